// Command kms-plugin is a KMS v2 plugin for atrest's tests: it serves the KeyManagementService gRPC API
// (k8s.io/kms/apis/v2, through k8s.io/kms/pkg/service) on a unix socket and wraps data keys with AES-256-GCM
// under one fixed key read from a file. It is what a cloud KMS plugin is to a real cluster, minus the cloud:
// the real kube-apiserver's kms v2 provider talks to it exactly as it would to a production plugin.
//
// Ciphertext layout: a 12-byte nonce followed by the GCM sealed box; the key id is the hex SHA-256 of the key
// (so a rotated key file shows up as a new key id, which is how kube-apiserver notices a KMS key rotation).
package main

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"k8s.io/kms/pkg/service"
)

type plugin struct {
	aead  cipher.AEAD
	keyID string
}

func (p *plugin) Encrypt(_ context.Context, _ string, data []byte) (*service.EncryptResponse, error) {
	nonce := make([]byte, p.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	return &service.EncryptResponse{Ciphertext: p.aead.Seal(nonce, nonce, data, nil), KeyID: p.keyID}, nil
}

func (p *plugin) Decrypt(_ context.Context, _ string, req *service.DecryptRequest) ([]byte, error) {
	if req.KeyID != p.keyID {
		return nil, fmt.Errorf("unknown key id %q (this plugin holds %q)", req.KeyID, p.keyID)
	}
	n := p.aead.NonceSize()
	if len(req.Ciphertext) < n {
		return nil, errors.New("ciphertext shorter than its nonce")
	}
	return p.aead.Open(nil, req.Ciphertext[:n], req.Ciphertext[n:], nil)
}

func (p *plugin) Status(context.Context) (*service.StatusResponse, error) {
	return &service.StatusResponse{Version: "v2", Healthz: "ok", KeyID: p.keyID}, nil
}

func main() {
	listen := flag.String("listen", "", "unix socket path to serve on (removed first if it exists)")
	keyFile := flag.String("key-file", "", "file holding the 32-byte AES key (raw bytes)")
	flag.Parse()
	if *listen == "" || *keyFile == "" {
		fmt.Fprintln(os.Stderr, "usage: kms-plugin --listen SOCKET --key-file FILE")
		os.Exit(2)
	}
	key, err := os.ReadFile(*keyFile)
	if err != nil {
		fmt.Fprintln(os.Stderr, "kms-plugin:", err)
		os.Exit(1)
	}
	if len(key) != 32 {
		fmt.Fprintf(os.Stderr, "kms-plugin: %s holds %d bytes, want 32\n", *keyFile, len(key))
		os.Exit(1)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		fmt.Fprintln(os.Stderr, "kms-plugin:", err)
		os.Exit(1)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		fmt.Fprintln(os.Stderr, "kms-plugin:", err)
		os.Exit(1)
	}
	sum := sha256.Sum256(key)
	p := &plugin{aead: aead, keyID: hex.EncodeToString(sum[:8])}

	_ = os.Remove(*listen)
	svc := service.NewGRPCService(*listen, 10*time.Second, p)
	go func() {
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
		<-sig
		svc.Shutdown()
	}()
	fmt.Fprintf(os.Stderr, "kms-plugin: serving key id %s on %s\n", p.keyID, *listen)
	if err := svc.ListenAndServe(); err != nil {
		fmt.Fprintln(os.Stderr, "kms-plugin:", err)
		os.Exit(1)
	}
}
