//! The per-key value transformers: identity, aescbc, aesgcm, secretbox, plus HKDF-Expand.
//!
//! Byte layouts follow kubernetes/apiserver `pkg/storage/value/encrypt/aes/aes.go` (CBC: IV16 ‖ CBC(PKCS#7);
//! GCM: nonce12 ‖ ct ‖ tag16, AD = etcd key), `aes_extended_nonce.go` (info32 ‖ nonce12 ‖ ct ‖ tag16 with
//! key = HKDF-Expand(SHA-256, seed, info)), `secretbox/secretbox.go` (nonce24 ‖ tag16 ‖ ct) and
//! `identity/identity.go`.

use super::{TransformError, Transformer, random_bytes};
use aes::cipher::{BlockCipherDecrypt, BlockCipherEncrypt, KeyInit};
use openssl::symm::{Cipher, decrypt_aead, encrypt_aead};

/// The reserved prefix of all encrypted data (`identity.go`: `encryptedPrefix`).
pub const ENCRYPTED_PREFIX: &[u8] = b"k8s:enc:";

/// Plaintext storage. Refuses `k8s:enc:` data on read, like upstream.
#[derive(Clone, Copy, Debug, Default)]
pub struct IdentityTransformer;

impl Transformer for IdentityTransformer {
    fn transform_from_storage(
        &self,
        data: &[u8],
        _authenticated_data: &[u8],
    ) -> Result<(Vec<u8>, bool), TransformError> {
        if data.starts_with(ENCRYPTED_PREFIX) {
            return Err(TransformError::IdentityReadEncrypted {
                found: super::classify(data).describe(),
            });
        }
        Ok((data.to_vec(), false))
    }

    fn transform_to_storage(
        &self,
        data: &[u8],
        _authenticated_data: &[u8],
    ) -> Result<Vec<u8>, TransformError> {
        Ok(data.to_vec())
    }
}

fn cipher_err(reason: impl Into<String>) -> TransformError {
    TransformError::Cipher(reason.into())
}

enum AesBlock {
    A128(aes::Aes128),
    A192(aes::Aes192),
    A256(aes::Aes256),
}

impl AesBlock {
    fn new(key: &[u8]) -> Result<Self, TransformError> {
        let bad = |_| cipher_err(format!("invalid AES key size {}", key.len()));
        Ok(match key.len() {
            16 => AesBlock::A128(aes::Aes128::new_from_slice(key).map_err(bad)?),
            24 => AesBlock::A192(aes::Aes192::new_from_slice(key).map_err(bad)?),
            32 => AesBlock::A256(aes::Aes256::new_from_slice(key).map_err(bad)?),
            n => {
                return Err(cipher_err(format!(
                    "invalid AES key size {n}, expected 16, 24 or 32"
                )));
            }
        })
    }
    fn encrypt(&self, b: &mut aes::Block) {
        match self {
            AesBlock::A128(c) => c.encrypt_block(b),
            AesBlock::A192(c) => c.encrypt_block(b),
            AesBlock::A256(c) => c.encrypt_block(b),
        }
    }
    /// Decrypts many blocks in place (AES-NI pipelines several blocks at once).
    fn decrypt_blocks(&self, blocks: &mut [aes::Block]) {
        match self {
            AesBlock::A128(c) => c.decrypt_blocks(blocks),
            AesBlock::A192(c) => c.decrypt_blocks(blocks),
            AesBlock::A256(c) => c.decrypt_blocks(blocks),
        }
    }
}

const BLOCK: usize = 16;

/// AES-CBC with PKCS#7 padding and a random 16-byte IV stored first; no AD (`aes.go` `cbc`).
/// Implemented with the RustCrypto `aes` block cipher (tests check it against OpenSSL).
pub struct AescbcTransformer {
    block: AesBlock,
}

impl AescbcTransformer {
    /// A transformer for a 16, 24 or 32 byte key.
    pub fn new(key: &[u8]) -> Result<Self, TransformError> {
        Ok(AescbcTransformer {
            block: AesBlock::new(key)?,
        })
    }

    /// Encrypts with a caller-chosen IV (tests and vectors); [`Transformer::transform_to_storage`] uses a random one.
    pub fn encrypt_with_iv(&self, data: &[u8], iv: &[u8; BLOCK]) -> Vec<u8> {
        let pad = BLOCK - data.len() % BLOCK;
        let mut out = Vec::with_capacity(BLOCK + data.len() + pad);
        out.extend_from_slice(iv);
        out.extend_from_slice(data);
        out.extend(std::iter::repeat_n(pad as u8, pad));
        let mut prev = *iv;
        for chunk in out[BLOCK..].chunks_exact_mut(BLOCK) {
            let mut b = aes::Block::default();
            for i in 0..BLOCK {
                b[i] = chunk[i] ^ prev[i];
            }
            self.block.encrypt(&mut b);
            chunk.copy_from_slice(&b);
            prev.copy_from_slice(&b);
        }
        out
    }
}

impl Transformer for AescbcTransformer {
    fn transform_from_storage(
        &self,
        data: &[u8],
        _authenticated_data: &[u8],
    ) -> Result<(Vec<u8>, bool), TransformError> {
        // Same checks as upstream: length, block multiple, padding byte range and consistency.
        if data.len() < BLOCK {
            return Err(cipher_err(
                "the stored data was shorter than the required size",
            ));
        }
        let (iv, body) = data.split_at(BLOCK);
        if body.len() % BLOCK != 0 {
            return Err(cipher_err("invalid block size"));
        }
        // CBC decryption: P[i] = D(C[i]) ^ C[i-1] (C[-1] = IV). The block decryptions are independent, so
        // decrypt them all at once, then XOR with the previous ciphertext block.
        let mut out = body.to_vec();
        let (blocks, rest) =
            aes::cipher::Array::<u8, aes::cipher::consts::U16>::slice_as_chunks_mut(&mut out);
        debug_assert!(rest.is_empty());
        self.block.decrypt_blocks(blocks);
        for (i, b) in out.iter_mut().enumerate() {
            *b ^= if i < BLOCK { iv[i] } else { body[i - BLOCK] };
        }
        let Some(&pad) = out.last() else {
            return Err(cipher_err(
                "the stored data was shorter than the required size",
            ));
        };
        let pad = usize::from(pad);
        if pad == 0 || pad > BLOCK || pad > out.len() {
            return Err(cipher_err(
                "invalid padding on input (wrong key or corrupted value)",
            ));
        }
        if out[out.len() - pad..]
            .iter()
            .any(|&b| usize::from(b) != pad)
        {
            return Err(cipher_err(
                "invalid padding on input (wrong key or corrupted value)",
            ));
        }
        out.truncate(out.len() - pad);
        Ok((out, false))
    }

    fn transform_to_storage(
        &self,
        data: &[u8],
        _authenticated_data: &[u8],
    ) -> Result<Vec<u8>, TransformError> {
        let mut iv = [0u8; BLOCK];
        random_bytes(&mut iv)?;
        Ok(self.encrypt_with_iv(data, &iv))
    }
}

fn gcm_cipher(key: &[u8]) -> Result<Cipher, TransformError> {
    match key.len() {
        16 => Ok(Cipher::aes_128_gcm()),
        24 => Ok(Cipher::aes_192_gcm()),
        32 => Ok(Cipher::aes_256_gcm()),
        n => Err(cipher_err(format!(
            "invalid AES key size {n}, expected 16, 24 or 32"
        ))),
    }
}

const NONCE: usize = 12;
const TAG: usize = 16;

/// AES-GCM open of `nonce12 ‖ ct ‖ tag16` (OpenSSL).
pub(crate) fn gcm_open(key: &[u8], data: &[u8], ad: &[u8]) -> Result<Vec<u8>, TransformError> {
    let cipher = gcm_cipher(key)?;
    if data.len() < NONCE + TAG {
        return Err(cipher_err(
            "the stored data was shorter than the required size",
        ));
    }
    let (nonce, rest) = data.split_at(NONCE);
    let (ct, tag) = rest.split_at(rest.len() - TAG);
    decrypt_aead(cipher, key, Some(nonce), ad, ct, tag).map_err(|_| {
        cipher_err("message authentication failed (wrong key, tampered value, or value moved from another etcd key)")
    })
}

/// AES-GCM seal to `nonce12 ‖ ct ‖ tag16` with the given nonce (OpenSSL).
pub(crate) fn gcm_seal(
    key: &[u8],
    nonce: &[u8; NONCE],
    data: &[u8],
    ad: &[u8],
) -> Result<Vec<u8>, TransformError> {
    let cipher = gcm_cipher(key)?;
    let mut tag = [0u8; TAG];
    let ct = encrypt_aead(cipher, key, Some(nonce), ad, data, &mut tag)
        .map_err(|e| cipher_err(format!("AES-GCM encryption failed: {e}")))?;
    let mut out = Vec::with_capacity(NONCE + ct.len() + TAG);
    out.extend_from_slice(nonce);
    out.extend_from_slice(&ct);
    out.extend_from_slice(&tag);
    Ok(out)
}

/// AES-GCM with a random 12-byte nonce; AD = the etcd key (`aes.go` `NewGCMTransformer`).
pub struct AesgcmTransformer {
    key: Vec<u8>,
}

impl AesgcmTransformer {
    /// A transformer for a 16, 24 or 32 byte key.
    pub fn new(key: &[u8]) -> Result<Self, TransformError> {
        gcm_cipher(key)?;
        Ok(AesgcmTransformer { key: key.to_vec() })
    }
}

impl Drop for AesgcmTransformer {
    fn drop(&mut self) {
        self.key.fill(0);
    }
}

impl Transformer for AesgcmTransformer {
    fn transform_from_storage(
        &self,
        data: &[u8],
        authenticated_data: &[u8],
    ) -> Result<(Vec<u8>, bool), TransformError> {
        gcm_open(&self.key, data, authenticated_data).map(|p| (p, false))
    }

    fn transform_to_storage(
        &self,
        data: &[u8],
        authenticated_data: &[u8],
    ) -> Result<Vec<u8>, TransformError> {
        let mut nonce = [0u8; NONCE];
        random_bytes(&mut nonce)?;
        gcm_seal(&self.key, &nonce, data, authenticated_data)
    }
}

/// HKDF-Expand (RFC 5869 §2.3) with HMAC-SHA256, no Extract step (OpenSSL HMAC).
pub fn hkdf_sha256_expand(prk: &[u8], info: &[u8], len: usize) -> Result<Vec<u8>, TransformError> {
    use openssl::{hash::MessageDigest, pkey::PKey, sign::Signer};
    if len > 255 * 32 {
        return Err(cipher_err("HKDF output too long"));
    }
    let pkey = PKey::hmac(prk).map_err(|e| cipher_err(format!("HMAC key: {e}")))?;
    let mut out = Vec::with_capacity(len);
    let mut t: Vec<u8> = Vec::new();
    let mut counter = 1u8;
    while out.len() < len {
        let mut s = Signer::new(MessageDigest::sha256(), &pkey)
            .map_err(|e| cipher_err(format!("HMAC: {e}")))?;
        let r = s
            .update(&t)
            .and_then(|_| s.update(info))
            .and_then(|_| s.update(&[counter]));
        r.map_err(|e| cipher_err(format!("HMAC: {e}")))?;
        t = s
            .sign_to_vec()
            .map_err(|e| cipher_err(format!("HMAC: {e}")))?;
        out.extend_from_slice(&t);
        counter = counter.wrapping_add(1);
    }
    out.truncate(len);
    Ok(out)
}

/// Size of the HKDF info prefix and derived key in extended-nonce GCM (`aes_extended_nonce.go`: 32).
pub const EXTENDED_NONCE_INFO_SIZE: usize = 32;

/// Extended-nonce AES-GCM (kms v2 seed mode): `info32 ‖ nonce12 ‖ ct ‖ tag16`,
/// key = HKDF-Expand(SHA-256, seed, info)[..32], AD = etcd key (`aes_extended_nonce.go`).
pub struct ExtendedNonceGcmTransformer {
    seed: Vec<u8>,
}

impl ExtendedNonceGcmTransformer {
    /// A transformer for a seed of at least 32 bytes (`MinSeedSizeExtendedNonceGCM`).
    pub fn new(seed: &[u8]) -> Result<Self, TransformError> {
        if seed.len() < EXTENDED_NONCE_INFO_SIZE {
            return Err(cipher_err(format!(
                "invalid seed length {}, expected at least 32",
                seed.len()
            )));
        }
        Ok(ExtendedNonceGcmTransformer {
            seed: seed.to_vec(),
        })
    }
}

impl Drop for ExtendedNonceGcmTransformer {
    fn drop(&mut self) {
        self.seed.fill(0);
    }
}

impl Transformer for ExtendedNonceGcmTransformer {
    fn transform_from_storage(
        &self,
        data: &[u8],
        authenticated_data: &[u8],
    ) -> Result<(Vec<u8>, bool), TransformError> {
        if data.len() < EXTENDED_NONCE_INFO_SIZE {
            return Err(cipher_err(
                "the stored data was shorter than the required size",
            ));
        }
        let (info, rest) = data.split_at(EXTENDED_NONCE_INFO_SIZE);
        let mut key = hkdf_sha256_expand(&self.seed, info, 32)?;
        let r = gcm_open(&key, rest, authenticated_data);
        key.fill(0);
        r.map(|p| (p, false))
    }

    fn transform_to_storage(
        &self,
        data: &[u8],
        authenticated_data: &[u8],
    ) -> Result<Vec<u8>, TransformError> {
        let mut info = [0u8; EXTENDED_NONCE_INFO_SIZE];
        random_bytes(&mut info)?;
        let mut nonce = [0u8; NONCE];
        random_bytes(&mut nonce)?;
        let mut key = hkdf_sha256_expand(&self.seed, &info, 32)?;
        let sealed = gcm_seal(&key, &nonce, data, authenticated_data);
        key.fill(0);
        let mut out = info.to_vec();
        out.extend_from_slice(&sealed?);
        Ok(out)
    }
}

/// NaCl secretbox (XSalsa20-Poly1305), random 24-byte nonce first; no AD (`secretbox.go`).
pub struct SecretboxTransformer {
    cipher: crypto_secretbox::XSalsa20Poly1305,
}

const SB_NONCE: usize = 24;

impl SecretboxTransformer {
    /// A transformer for a 32-byte key.
    pub fn new(key: &[u8]) -> Result<Self, TransformError> {
        use crypto_secretbox::KeyInit as _;
        if key.len() != 32 {
            return Err(cipher_err(format!(
                "invalid secretbox key size {}, expected 32",
                key.len()
            )));
        }
        let cipher = crypto_secretbox::XSalsa20Poly1305::new_from_slice(key)
            .map_err(|_| cipher_err("invalid secretbox key"))?;
        Ok(SecretboxTransformer { cipher })
    }
}

impl Transformer for SecretboxTransformer {
    fn transform_from_storage(
        &self,
        data: &[u8],
        _authenticated_data: &[u8],
    ) -> Result<(Vec<u8>, bool), TransformError> {
        use crypto_secretbox::aead::Aead;
        if data.len() < SB_NONCE + 16 {
            return Err(cipher_err(
                "the stored data was shorter than the required size",
            ));
        }
        let (nonce, rest) = data.split_at(SB_NONCE);
        let nonce = crypto_secretbox::Nonce::from_slice(nonce);
        self.cipher
            .decrypt(nonce, rest)
            .map(|p| (p, false))
            .map_err(|_| cipher_err("message authentication failed (wrong key or tampered value)"))
    }

    fn transform_to_storage(
        &self,
        data: &[u8],
        _authenticated_data: &[u8],
    ) -> Result<Vec<u8>, TransformError> {
        use crypto_secretbox::aead::Aead;
        let mut nonce = [0u8; SB_NONCE];
        random_bytes(&mut nonce)?;
        let sealed = self
            .cipher
            .encrypt(crypto_secretbox::Nonce::from_slice(&nonce), data)
            .map_err(|_| cipher_err("secretbox encryption failed"))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        Ok(out)
    }
}
