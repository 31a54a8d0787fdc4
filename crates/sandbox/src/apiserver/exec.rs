//! `pods/exec` over WebSocket (`v5.channel.k8s.io`, `v4.channel.k8s.io`), run by the node's kubelet.
//!
//! The real kube-apiserver validates the request against the stored pod (apiserver
//! `pkg/registry/core/pod/strategy.go` `ExecLocation`/`streamLocation`) and proxies the upgraded connection to the
//! kubelet of the pod's node, which runs the command in the container (kubelet
//! `pkg/kubelet/cri/streaming/remotecommand`). Here the kubelet is the sandbox's own ([`Kubelet`]), reached in
//! process.
//!
//! Wire format (apimachinery `pkg/util/remotecommand/constants.go`, apiserver `pkg/util/wsstream/conn.go`): every
//! binary WebSocket message starts with a channel byte: 0 stdin, 1 stdout, 2 stderr, 3 error (one
//! `metav1.Status` JSON when the command ends: `Success`, or `Failure` with reason `NonZeroExitCode` and the exit code
//! in `details.causes[{reason: ExitCode}]`, kubelet `remotecommand/exec.go`), 4 resize. `v5` adds channel 255 "close":
//! the client sends `[255, 0]` when its stdin ends. After the status the server closes the WebSocket.
//!
//! Authorization is the router's, from the request info: the WebSocket handshake is a `GET`, so it needs `get` on
//! `pods/exec` as in Kubernetes ≤ 1.34 (from 1.35 the `AuthorizePodWebsocketUpgradeCreatePermission` gate also
//! requires `create`, kubernetes/website `feature-gates/AuthorizePodWebsocketUpgradeCreatePermission.md`); a
//! `POST` needs `create`.
//!
//! Sandbox limits: SPDY/3.1 (what kubectl 1.27–1.29 speak, and 1.30+ only as a fallback when the WebSocket upgrade
//! fails) is refused with a `BadRequest` naming the supported protocols; `tty` is refused; only the etcd container
//! can exec, and only `etcdctl …` or `sh -c SCRIPT` (see [`Kubelet`]).

use std::process::Stdio;
use std::sync::Arc;

use futures_util::{SinkExt, StreamExt};
use http_body_util::Full;
use hyper::body::Bytes;
use hyper::upgrade::OnUpgrade;
use hyper::{Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role};

use super::PathResolver;
use super::http::Resp;
use super::resources;
use super::router::{Ctx, RequestInfo, percent_decode};
use super::status::ApiError;

/// The binary channel protocols served, in no particular preference (the client's order decides, as upstream).
const PROTOCOLS: &[&str] = &["v5.channel.k8s.io", "v4.channel.k8s.io"];

const STDIN: u8 = 0;
const STDOUT: u8 = 1;
const STDERR: u8 = 2;
const ERROR: u8 = 3;
const CLOSE: u8 = 255;

/// The node side of `pods/exec` (the kubelet's `/exec/{namespace}/{pod}/{container}` endpoint).
pub trait Kubelet: Send + Sync {
    /// The running container `container` of pod `namespace/pod`, or why it cannot exec (the message the kubelet
    /// gives, e.g. `container not found ("etcd")`).
    fn exec_container(
        &self,
        namespace: &str,
        pod: &str,
        container: &str,
    ) -> Result<ExecContainer, String>;
    /// The node's hostname (its containers share the node's UTS namespace).
    fn hostname(&self) -> String;
}

/// What the kubelet knows about a running container for exec.
#[derive(Clone)]
pub struct ExecContainer {
    /// Container path → host path, through the pod's hostPath volume mounts.
    pub paths: Arc<dyn PathResolver>,
    /// The container's `env` (name, value).
    pub env: Vec<(String, String)>,
}

/// Whether a request is for `pods/exec` (routed here instead of the REST storage).
pub(crate) fn is_exec(info: &RequestInfo) -> bool {
    info.group.is_empty() && info.resource == "pods" && info.subresource == "exec"
}

/// The exec options from the query (`PodExecOptions`; `command` repeats).
#[derive(Debug, Default)]
struct ExecOptions {
    command: Vec<String>,
    container: String,
    stdin: bool,
    stdout: bool,
    stderr: bool,
    tty: bool,
}

fn exec_options(query: Option<&str>) -> ExecOptions {
    let mut o = ExecOptions::default();
    let truthy = |v: &str| matches!(v, "1" | "true" | "True" | "TRUE" | "t" | "T");
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let v = percent_decode(v);
        match percent_decode(k).as_str() {
            "command" => o.command.push(v),
            "container" => o.container = v,
            "stdin" => o.stdin = truthy(&v),
            "stdout" => o.stdout = truthy(&v),
            "stderr" => o.stderr = truthy(&v),
            "tty" => o.tty = truthy(&v),
            _ => {}
        }
    }
    o
}

/// Serve `GET|POST /api/v1/namespaces/{ns}/pods/{name}/exec` (already authenticated and authorized).
pub(crate) async fn handle(ctx: &Ctx<'_>) -> Result<Resp, ApiError> {
    let info = &ctx.info;
    let opts = exec_options(ctx.parts.uri.query());
    // Validation as apiserver `pkg/apis/core/validation` (PodExecOptions) and `strategy.go` `ExecLocation`.
    if opts.command.is_empty() {
        return Err(ApiError::bad_request("you must specify at least 1 command"));
    }
    if !(opts.stdin || opts.stdout || opts.stderr) {
        return Err(ApiError::bad_request(
            "you must specify at least one of stdin, stdout, stderr",
        ));
    }
    let def = resources::lookup("", "v1", "pods").ok_or_else(ApiError::path_not_found)?;
    let pod = ctx
        .server
        .store
        .get(def, &info.namespace, &info.name)
        .await?
        .ok_or_else(|| ApiError::not_found("", "pods", &info.name))?;
    let pod = &pod.obj;
    let containers: Vec<String> = pod
        .pointer("/spec/containers")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|c| c.get("name").and_then(Value::as_str).map(String::from))
                .collect()
        })
        .unwrap_or_default();
    let container = if opts.container.is_empty() {
        match containers.as_slice() {
            [one] => one.clone(),
            _ => {
                return Err(ApiError::bad_request(format!(
                    "a container name must be specified for pod {}, choose one of: [{}]",
                    info.name,
                    containers.join(" ")
                )));
            }
        }
    } else if containers.contains(&opts.container) {
        opts.container.clone()
    } else {
        return Err(ApiError::bad_request(format!(
            "container {} is not valid for pod {}",
            opts.container, info.name
        )));
    };
    if pod
        .pointer("/spec/nodeName")
        .and_then(Value::as_str)
        .unwrap_or("")
        .is_empty()
    {
        return Err(ApiError::bad_request(format!(
            "pod {} does not have a host assigned",
            info.name
        )));
    }

    let kubelet = ctx.server.kubelet.clone().ok_or_else(|| {
        ApiError::internal(format!(
            "no kubelet connection for node of pod {}",
            info.name
        ))
    })?;
    let target = kubelet
        .exec_container(&info.namespace, &info.name, &container)
        .map_err(|e| ApiError::internal(format!("unable to upgrade connection: {e}")))?;
    if opts.tty {
        return Err(ApiError::bad_request(
            "tty is not supported by the sandbox's exec: run without -t",
        ));
    }
    // The upgrade (UpgradeAwareHandler: a plain request gets "Upgrade request required").
    let upgrade = ctx.header("upgrade").to_ascii_lowercase();
    if upgrade.is_empty() {
        return Err(ApiError::bad_request("Upgrade request required"));
    }
    if upgrade != "websocket" {
        return Err(ApiError::bad_request(format!(
            "unable to upgrade: the sandbox serves exec over WebSocket only ({}), not {}: use kubectl 1.30 or newer",
            PROTOCOLS.join(", "),
            ctx.header("upgrade")
        )));
    }
    let key = ctx.header("sec-websocket-key").to_string();
    if key.is_empty() || ctx.header("sec-websocket-version") != "13" {
        return Err(ApiError::bad_request(
            "unable to upgrade: a WebSocket version 13 handshake with Sec-WebSocket-Key is required",
        ));
    }
    let offered: Vec<String> = ctx
        .parts
        .headers
        .get_all("sec-websocket-protocol")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty())
        .collect();
    let Some(protocol) = offered
        .iter()
        .find(|p| PROTOCOLS.contains(&p.as_str()))
        .cloned()
    else {
        return Err(ApiError::bad_request(format!(
            "unable to upgrade: requested protocol(s) are not supported: [{}]; supports [{}]",
            offered.join(" "),
            PROTOCOLS.join(" ")
        )));
    };
    let on_upgrade = ctx
        .parts
        .extensions
        .get::<OnUpgrade>()
        .cloned()
        .ok_or_else(|| ApiError::internal("the connection cannot be upgraded"))?;

    let v5 = protocol == "v5.channel.k8s.io";
    tracing::info!(pod = %info.name, namespace = %info.namespace, %container, user = %ctx.user.name, argv = ?opts.command, %protocol, "exec");
    tokio::spawn(async move {
        match on_upgrade.await {
            Ok(upgraded) => {
                let ws =
                    WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, None)
                        .await;
                if let Err(e) = serve(ws, opts, target, v5).await {
                    tracing::debug!("exec stream ended: {e}");
                }
            }
            Err(e) => tracing::debug!("exec upgrade failed: {e}"),
        }
    });
    Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header("Connection", "Upgrade")
        .header("Upgrade", "websocket")
        .header("Sec-WebSocket-Accept", accept_key(&key))
        .header("Sec-WebSocket-Protocol", protocol)
        .body(Full::new(Bytes::new()))
        .map_err(ApiError::internal)
}

/// RFC 6455 §4.2.2: base64(SHA-1(key + GUID)).
fn accept_key(key: &str) -> String {
    use base64::Engine as _;
    let digest =
        openssl::sha::sha1(format!("{key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11").as_bytes());
    base64::engine::general_purpose::STANDARD.encode(digest)
}

type Ws = WebSocketStream<TokioIo<hyper::upgrade::Upgraded>>;

/// Run the command and pump its streams over the WebSocket until it exits; then send the status and close.
async fn serve(ws: Ws, opts: ExecOptions, target: ExecContainer, v5: bool) -> Result<(), String> {
    let (mut sink, mut source) = ws.split();
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Message>(16);
    // One writer: output chunks and the final status, in order.
    let writer = tokio::spawn(async move {
        while let Some(m) = rx.recv().await {
            let close = matches!(m, Message::Close(_));
            if sink.send(m).await.is_err() || close {
                break;
            }
        }
        let _ = sink.flush().await;
    });

    let status = match spawn(&opts, &target) {
        Err(e) => {
            let _ = tx.send(frame(STDERR, format!("{e}\n").as_bytes())).await;
            exit_status(&opts.command, 126)
        }
        Ok((mut child, _cwd)) => {
            let stdin = child.stdin.take();
            let reader = async {
                // Client → stdin; also consumes pings and the close handshake.
                let mut stdin = stdin;
                while let Some(Ok(msg)) = source.next().await {
                    let data = match msg {
                        Message::Binary(d) => d,
                        Message::Close(_) => break,
                        _ => continue,
                    };
                    match data.first() {
                        Some(&STDIN) => {
                            if let Some(w) = stdin.as_mut()
                                && w.write_all(&data[1..]).await.is_err()
                            {
                                stdin = None;
                            }
                        }
                        Some(&CLOSE) if v5 && data.get(1) == Some(&STDIN) => stdin = None,
                        _ => {} // resize and unknown channels are ignored
                    }
                }
            };
            let out = pump(child.stdout.take(), STDOUT, tx.clone());
            let err = pump(child.stderr.take(), STDERR, tx.clone());
            let run = async {
                let _ = tokio::join!(out, err);
                child.wait().await
            };
            tokio::pin!(reader);
            let waited = tokio::select! {
                w = run => w,
                // The client went away: stop the command (kill_on_drop).
                _ = &mut reader => return Err("client closed the connection".into()),
            };
            match waited {
                Ok(s) if s.success() => json!({"metadata": {}, "status": "Success"}),
                Ok(s) => exit_status(
                    &opts.command,
                    s.code().unwrap_or_else(|| {
                        128 + std::os::unix::process::ExitStatusExt::signal(&s).unwrap_or(0)
                    }),
                ),
                Err(e) => {
                    json!({"metadata": {}, "status": "Failure", "message": e.to_string(), "reason": "InternalError", "code": 500})
                }
            }
        }
    };
    let body = serde_json::to_vec(&status).unwrap_or_default();
    let _ = tx.send(frame(ERROR, &body)).await;
    let _ = tx
        .send(Message::Close(Some(CloseFrame {
            code: CloseCode::Normal,
            reason: "".into(),
        })))
        .await;
    drop(tx);
    let _ = writer.await;
    Ok(())
}

fn frame(channel: u8, data: &[u8]) -> Message {
    let mut v = Vec::with_capacity(data.len() + 1);
    v.push(channel);
    v.extend_from_slice(data);
    Message::Binary(v.into())
}

async fn pump(
    r: Option<impl tokio::io::AsyncRead + Unpin>,
    channel: u8,
    tx: tokio::sync::mpsc::Sender<Message>,
) {
    let Some(mut r) = r else { return };
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        match r.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if tx.send(frame(channel, &buf[..n])).await.is_err() {
                    return;
                }
            }
        }
    }
}

/// The kubelet's status for a non-zero exit (kubelet `pkg/kubelet/cri/streaming/remotecommand/exec.go`).
fn exit_status(argv: &[String], code: i32) -> Value {
    json!({
        "metadata": {},
        "status": "Failure",
        "message": format!("command terminated with non-zero exit code: command '{}' exited with {code}", argv.join(" ")),
        "reason": "NonZeroExitCode",
        "details": {"causes": [{"reason": "ExitCode", "message": code.to_string()}]}
    })
}

/// Start the command "in the container": on the host, with every absolute path that a hostPath mount covers
/// rewritten to its host path, the container's env, and an empty private working directory. Only `etcdctl` and
/// `sh -c` are available (the sandbox's etcd "image" is the host's etcd install).
fn spawn(
    opts: &ExecOptions,
    target: &ExecContainer,
) -> Result<(tokio::process::Child, tempfile::TempDir), String> {
    let argv = &opts.command;
    let bin = argv[0].rsplit('/').next().unwrap_or_default();
    let args: Vec<String> = match bin {
        "etcdctl" => argv[1..]
            .iter()
            .map(|a| rewrite_paths(a, &*target.paths))
            .collect(),
        "sh" | "bash" if argv.get(1).map(String::as_str) == Some("-c") && argv.len() >= 3 => {
            let mut a = vec!["-c".to_string(), rewrite_paths(&argv[2], &*target.paths)];
            a.extend(argv[3..].iter().cloned());
            a
        }
        _ => {
            return Err(format!(
                "OCI runtime exec failed: exec failed: unable to start container process: exec: {:?}: \
                 not available in the sandbox's etcd container (only etcdctl and sh -c are)",
                argv[0]
            ));
        }
    };
    let program = if bin == "etcdctl" { "etcdctl" } else { "sh" };
    let cwd = tempfile::tempdir().map_err(|e| format!("creating the working directory: {e}"))?;
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(&args)
        .env_clear()
        .env(
            "PATH",
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        )
        .envs(target.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .current_dir(cwd.path())
        .stdin(if opts.stdin {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(if opts.stdout {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stderr(if opts.stderr {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .kill_on_drop(true);
    let child = cmd.spawn().map_err(|e| {
        format!(
            "OCI runtime exec failed: exec failed: unable to start container process: exec: {:?}: {e}",
            argv[0]
        )
    })?;
    Ok((child, cwd))
}

/// Rewrite every absolute path in `s` that a mount covers to its host path. A path starts at the beginning, after
/// whitespace, a quote or `=` (`--cacert=/etc/...`), and ends at whitespace, a quote or a shell operator.
fn rewrite_paths(s: &str, paths: &dyn PathResolver) -> String {
    let is_end = |c: char| c.is_whitespace() || "'\"`;|&<>()".contains(c);
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    let mut prev: Option<char> = None;
    while let Some(c) = rest.chars().next() {
        let starts = c == '/' && prev.is_none_or(|p| p.is_whitespace() || "'\"=".contains(p));
        if starts {
            let end = rest.find(is_end).unwrap_or(rest.len());
            let path = &rest[..end];
            match paths.host_path(std::path::Path::new(path)) {
                Some(h) => out.push_str(&h.to_string_lossy()),
                None => out.push_str(path),
            }
            prev = path.chars().last();
            rest = &rest[end..];
            continue;
        }
        out.push(c);
        prev = Some(c);
        rest = &rest[c.len_utf8()..];
    }
    out
}

/// The first container's `env` entries that have literal values (for [`ExecContainer::env`]).
pub fn container_env(pod: &k8s_openapi::api::core::v1::Pod) -> Vec<(String, String)> {
    pod.spec
        .as_ref()
        .and_then(|s| s.containers.first())
        .and_then(|c| c.env.as_ref())
        .map(|env| {
            env.iter()
                .filter_map(|e| e.value.clone().map(|v| (e.name.clone(), v)))
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::{Path, PathBuf};

    struct Mounts;
    impl PathResolver for Mounts {
        fn host_path(&self, p: &Path) -> Option<PathBuf> {
            p.strip_prefix("/etc/kubernetes/pki/etcd")
                .ok()
                .map(|r| Path::new("/root-x/etc/kubernetes/pki/etcd").join(r))
        }
    }

    #[test]
    fn paths_under_mounts_are_rewritten_and_others_kept() {
        let r = |s: &str| rewrite_paths(s, &Mounts);
        assert_eq!(
            r("--cacert=/etc/kubernetes/pki/etcd/ca.crt"),
            "--cacert=/root-x/etc/kubernetes/pki/etcd/ca.crt"
        );
        assert_eq!(
            r("/etc/kubernetes/pki/etcd/server.key"),
            "/root-x/etc/kubernetes/pki/etcd/server.key"
        );
        assert_eq!(
            r("/registry/secrets/default/demo"),
            "/registry/secrets/default/demo"
        );
        assert_eq!(
            r(
                "ETCDCTL_API=3 etcdctl --cert '/etc/kubernetes/pki/etcd/server.crt' get /registry/x | hexdump -C"
            ),
            "ETCDCTL_API=3 etcdctl --cert '/root-x/etc/kubernetes/pki/etcd/server.crt' get /registry/x | hexdump -C"
        );
        // Not at a path start: untouched.
        assert_eq!(
            r("a/etc/kubernetes/pki/etcd/x"),
            "a/etc/kubernetes/pki/etcd/x"
        );
    }

    #[test]
    fn options_keep_every_command_argument_in_order() {
        let o = exec_options(Some(
            "command=etcdctl&command=get&command=%2Fregistry%2Fsecrets%2Fdefault%2Fdemo&container=etcd&stdout=true&stderr=1&tty=false",
        ));
        assert_eq!(
            o.command,
            ["etcdctl", "get", "/registry/secrets/default/demo"]
        );
        assert_eq!(o.container, "etcd");
        assert!(o.stdout && o.stderr && !o.stdin && !o.tty);
    }

    #[test]
    fn accept_key_matches_rfc6455_example() {
        assert_eq!(
            accept_key("dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn exit_status_carries_the_code_as_kubectl_reads_it() {
        let s = exit_status(&["sh".into(), "-c".into(), "exit 3".into()], 3);
        assert_eq!(s["reason"], "NonZeroExitCode");
        assert_eq!(s["details"]["causes"][0]["reason"], "ExitCode");
        assert_eq!(s["details"]["causes"][0]["message"], "3");
    }
}
