//! Reading etcd through the etcd static pod: `etcdctl` run by the API server's `pods/exec` subresource, as the
//! tutorial's `kubectl exec etcd-master -n kube-system -- etcdctl … get /registry/secrets/default/demo` does.
//!
//! [`find_etcd_pod`] finds the pod (by name, or by kubeadm's labels `component=etcd,tier=control-plane` in
//! `kube-system`) and takes the endpoint and certificate paths from the container's own etcd flags
//! ([`EtcdPod::from_pod`]). [`EtcdctlPager`] then reads a key range page by page with
//! `etcdctl get START END --limit N --rev R -w json` inside the container (values come base64 in the JSON), so the
//! pages can be fed to the same checks as the direct mode ([`crate::scan::Source`]).
//!
//! Only `etcdctl` is run, never a shell: the etcd images of recent Kubernetes releases have no `sh`.
//! Permissions: `get`/`list` on `pods` in the pod's namespace, and `pods/exec` (`create`; the WebSocket upgrade
//! is authorized as `get` up to Kubernetes 1.34 and as both from 1.35, kubernetes/website
//! `feature-gates/AuthorizePodWebsocketUpgradeCreatePermission.md`).

use base64::Engine as _;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, AttachParams, ListParams};
use serde::Deserialize;
use tokio::io::AsyncReadExt;

use crate::etcd::{PageSize, prefix_range_end};
use crate::kubeadm::node::{self, CommandLine};
use crate::scan::{Pages, ScanRequest};

/// kubeadm's labels on its etcd static pod (kubeadm `app/util/staticpod/utils.go` `ComponentPod`).
pub const ETCD_POD_SELECTOR: &str = "component=etcd,tier=control-plane";

/// The namespace kubeadm's static pods are mirrored into.
pub const CONTROL_PLANE_NAMESPACE: &str = "kube-system";

/// What went wrong reading etcd through its pod. Messages name the pod, the permission or the flag to fix.
#[derive(Debug, thiserror::Error)]
pub enum PodExecError {
    /// The API server refused the request (RBAC).
    #[error(
        "{message}\nhint: --via-pod needs `get` and `list` on pods and `get` and `create` on pods/exec in namespace {namespace}: `kubectl create role etcd-exec -n {namespace} --verb=get,list --resource=pods` plus `--verb=get,create --resource=pods/exec` in a second role, each bound to the user (exec into etcd gives full access to etcd: grant it to cluster admins only)"
    )]
    Forbidden {
        /// The API server's message.
        message: String,
        /// The pod's namespace.
        namespace: String,
    },
    /// Another API error (not found, bad request, connection).
    #[error("{what}: {message}")]
    Api {
        /// What was being done.
        what: String,
        /// The server's status (`Error from server (NotFound): …`, as kubectl prints it) or the client error.
        message: String,
    },
    /// No pod carries kubeadm's etcd labels.
    #[error(
        "no etcd pod found in namespace {namespace} (label {ETCD_POD_SELECTOR}): name it with --via-pod POD"
    )]
    NoEtcdPod {
        /// Where it was looked for.
        namespace: String,
    },
    /// The pod's etcd command lacks a flag needed to reach etcd.
    #[error("pod {namespace}/{pod}: {message}")]
    PodSpec {
        /// The pod's namespace.
        namespace: String,
        /// The pod.
        pod: String,
        /// What is missing.
        message: String,
    },
    /// etcdctl ran but failed.
    #[error("etcdctl in pod {pod} exited with code {code}: {stderr}")]
    Command {
        /// The pod.
        pod: String,
        /// Its exit code.
        code: i32,
        /// Its standard error (trimmed).
        stderr: String,
    },
    /// The exec stream or etcdctl's output could not be read.
    #[error("pod {pod}: {message}")]
    Protocol {
        /// The pod.
        pod: String,
        /// What was wrong.
        message: String,
    },
}

fn api_error(what: impl Into<String>, namespace: &str, e: kube::Error) -> PodExecError {
    match e {
        kube::Error::Api(s) if s.code == 403 => PodExecError::Forbidden {
            message: format!("Error from server (Forbidden): {}", s.message),
            namespace: namespace.to_string(),
        },
        kube::Error::Api(s) => PodExecError::Api {
            what: what.into(),
            message: format!("Error from server ({}): {}", s.reason, s.message),
        },
        other => {
            let mut message = other.to_string();
            let mut src = std::error::Error::source(&other);
            while let Some(e) = src {
                let m = e.to_string();
                if !message.contains(&m) {
                    message = format!("{message}: {m}");
                }
                src = e.source();
            }
            PodExecError::Api {
                what: what.into(),
                message,
            }
        }
    }
}

/// The etcd pod and how `etcdctl` inside it reaches etcd, from the container's flags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EtcdPod {
    /// The pod's namespace.
    pub namespace: String,
    /// The pod's name (`etcd-<node>` for kubeadm).
    pub name: String,
    /// The etcd container's name.
    pub container: String,
    /// The client URL to use from inside the pod: the first loopback URL of `--listen-client-urls` (the pod is on
    /// the host network), else the first of `--advertise-client-urls`.
    pub endpoint: String,
    /// `--trusted-ca-file` (container path).
    pub cacert: String,
    /// `--cert-file` (container path). kubeadm's etcd server certificate is also a client certificate
    /// (kubeadm `app/phases/certs/certlist.go` `KubeadmCertEtcdServer`: server and client auth usages), which is
    /// what the tutorial uses.
    pub cert: String,
    /// `--key-file` (container path).
    pub key: String,
}

impl EtcdPod {
    /// Read the etcd container (the one whose command starts with `etcd`, else the first) of a pod.
    pub fn from_pod(pod: &Pod) -> Result<Self, PodExecError> {
        let namespace = pod.metadata.namespace.clone().unwrap_or_default();
        let name = pod.metadata.name.clone().unwrap_or_default();
        let bad = |message: String| PodExecError::PodSpec {
            namespace: namespace.clone(),
            pod: name.clone(),
            message,
        };
        let containers = pod
            .spec
            .as_ref()
            .map(|s| s.containers.as_slice())
            .unwrap_or_default();
        let c = containers
            .iter()
            .find(|c| node::runs(&node::typed_container_argv(c), "etcd"))
            .or_else(|| containers.first())
            .ok_or_else(|| bad("the pod has no containers".into()))?;
        let flags = CommandLine::parse(&node::typed_container_argv(c));
        let need = |f: &str| {
            flags.get(f).filter(|v| !v.is_empty()).map(str::to_string).ok_or_else(|| {
                bad(format!(
                    "container {:?} has no --{f} flag: cannot tell etcdctl which certificate to use",
                    c.name
                ))
            })
        };
        let urls = |f: &str| flags.list(f);
        let listen = urls("listen-client-urls");
        let is_loopback = |u: &&String| {
            let host = u.split("://").nth(1).unwrap_or("");
            host.starts_with("127.") || host.starts_with("[::1]") || host.starts_with("localhost")
        };
        let endpoint = listen
            .iter()
            .find(is_loopback)
            .cloned()
            .or_else(|| urls("advertise-client-urls").into_iter().next())
            .or_else(|| listen.first().cloned())
            .ok_or_else(|| {
                bad(format!(
                    "container {:?} has neither --listen-client-urls nor --advertise-client-urls",
                    c.name
                ))
            })?;
        Ok(EtcdPod {
            cacert: need("trusted-ca-file")?,
            cert: need("cert-file")?,
            key: need("key-file")?,
            container: c.name.clone(),
            endpoint,
            namespace,
            name,
        })
    }

    /// `etcdctl` with this pod's endpoint and certificates, then `args`.
    pub fn etcdctl(&self, args: &[String]) -> Vec<String> {
        let mut v = vec![
            "etcdctl".to_string(),
            format!("--endpoints={}", self.endpoint),
            format!("--cacert={}", self.cacert),
            format!("--cert={}", self.cert),
            format!("--key={}", self.key),
        ];
        v.extend(args.iter().cloned());
        v
    }
}

/// Find the etcd pod: `name` in `namespace` if given, else the first (by name) pod labelled
/// [`ETCD_POD_SELECTOR`] there.
pub async fn find_etcd_pod(
    client: &kube::Client,
    namespace: &str,
    name: Option<&str>,
) -> Result<EtcdPod, PodExecError> {
    let api: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let pod = match name {
        Some(n) => api
            .get(n)
            .await
            .map_err(|e| api_error(format!("getting pod {namespace}/{n}"), namespace, e))?,
        None => {
            let mut pods = api
                .list(&ListParams::default().labels(ETCD_POD_SELECTOR))
                .await
                .map_err(|e| {
                    api_error(
                        format!("listing pods {ETCD_POD_SELECTOR} in {namespace}"),
                        namespace,
                        e,
                    )
                })?
                .items;
            pods.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
            let running = pods.iter().position(|p| {
                p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running")
            });
            match running.or(if pods.is_empty() { None } else { Some(0) }) {
                Some(i) => pods.swap_remove(i),
                None => {
                    return Err(PodExecError::NoEtcdPod {
                        namespace: namespace.to_string(),
                    });
                }
            }
        }
    };
    let pod = EtcdPod::from_pod(&pod)?;
    tracing::debug!(pod = %pod.name, endpoint = %pod.endpoint, "etcd pod");
    Ok(pod)
}

/// A finished command: its output and exit code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecOutput {
    /// Standard output.
    pub stdout: Vec<u8>,
    /// Standard error.
    pub stderr: Vec<u8>,
    /// The exit code (0 on success).
    pub code: i32,
}

/// Run `argv` in the pod's container through `pods/exec` and collect its output.
pub async fn exec(
    client: &kube::Client,
    pod: &EtcdPod,
    argv: Vec<String>,
) -> Result<ExecOutput, PodExecError> {
    let api: Api<Pod> = Api::namespaced(client.clone(), &pod.namespace);
    let mut ap = AttachParams::default()
        .container(pod.container.clone())
        .stdin(false)
        .stdout(true)
        .stderr(true);
    ap.max_stdout_buf_size = Some(1 << 20);
    ap.max_stderr_buf_size = Some(64 << 10);
    let mut proc = api.exec(&pod.name, argv, &ap).await.map_err(|e| {
        api_error(
            format!("exec in pod {}/{}", pod.namespace, pod.name),
            &pod.namespace,
            e,
        )
    })?;
    let protocol = |message: String| PodExecError::Protocol {
        pod: pod.name.clone(),
        message,
    };
    let status = proc.take_status();
    let (mut out_r, mut err_r) = (proc.stdout(), proc.stderr());
    let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
    let read_out = async {
        match out_r.as_mut() {
            Some(r) => r.read_to_end(&mut stdout).await.map(|_| ()),
            None => Ok(()),
        }
    };
    let read_err = async {
        match err_r.as_mut() {
            Some(r) => r.read_to_end(&mut stderr).await.map(|_| ()),
            None => Ok(()),
        }
    };
    let (a, b) = tokio::join!(read_out, read_err);
    a.and(b)
        .map_err(|e| protocol(format!("reading the exec stream: {e}")))?;
    let status = match status {
        Some(s) => s.await,
        None => None,
    };
    proc.join()
        .await
        .map_err(|e| protocol(format!("exec stream: {e}")))?;
    let code = match status {
        None => return Err(protocol("the exec stream ended without a status".into())),
        Some(s) if s.status.as_deref() == Some("Success") => 0,
        Some(s) => {
            let exit = s
                .details
                .as_ref()
                .and_then(|d| d.causes.as_ref())
                .into_iter()
                .flatten()
                .find(|c| c.reason.as_deref() == Some("ExitCode"))
                .and_then(|c| c.message.as_deref()?.parse::<i32>().ok());
            match (s.reason.as_deref(), exit) {
                (Some("NonZeroExitCode"), Some(code)) => code,
                _ => {
                    return Err(protocol(format!(
                        "error executing remote command: {}",
                        s.message.unwrap_or_default()
                    )));
                }
            }
        }
    };
    Ok(ExecOutput {
        stdout,
        stderr,
        code,
    })
}

/// `etcdctl get -w json` output (etcd `etcdserverpb.RangeResponse` as JSON: bytes in base64).
#[derive(Debug, Deserialize)]
struct RangeJson {
    header: HeaderJson,
    #[serde(default)]
    kvs: Vec<KvJson>,
    #[serde(default)]
    more: bool,
}

#[derive(Debug, Deserialize)]
struct HeaderJson {
    #[serde(default)]
    revision: i64,
}

#[derive(Debug, Deserialize)]
struct KvJson {
    key: String,
    #[serde(default)]
    value: String,
    #[serde(default)]
    mod_revision: i64,
}

/// One key and its raw value.
pub type KeyValue = (Vec<u8>, Vec<u8>);

/// Reads `[start, end)` through `etcdctl get` in the pod, `limit` keys per exec, all pages at the revision of the
/// first one. The next page starts at the last key read (etcdctl takes keys as argv, which cannot hold the `\0` of
/// "last key + 1"), asks for one key more, and drops that first key.
pub struct EtcdctlPager<'a> {
    client: &'a kube::Client,
    pod: &'a EtcdPod,
    start: String,
    end: Option<String>,
    limit: PageSize,
    revision: i64,
    skip_first: bool,
    done: bool,
    round_trips: u64,
    last_mod_revision: i64,
}

impl<'a> EtcdctlPager<'a> {
    /// Page over `[start, end)`; `end: None` reads the single key `start`.
    pub fn new(
        client: &'a kube::Client,
        pod: &'a EtcdPod,
        start: String,
        end: Option<String>,
        limit: PageSize,
    ) -> Self {
        EtcdctlPager {
            client,
            pod,
            start,
            end,
            limit,
            revision: 0,
            skip_first: false,
            done: false,
            round_trips: 0,
            last_mod_revision: 0,
        }
    }

    /// Page over the keys `req` selects: its one key, or its range.
    pub fn for_request(
        client: &'a kube::Client,
        pod: &'a EtcdPod,
        req: &ScanRequest,
        page_size: PageSize,
    ) -> Result<Self, PodExecError> {
        if let Some(key) = req.single_key() {
            return Ok(EtcdctlPager::new(client, pod, key, None, page_size));
        }
        let start = req.range_start();
        let end = String::from_utf8(prefix_range_end(start.as_bytes())).map_err(|_| {
            PodExecError::Protocol {
                pod: pod.name.clone(),
                message: format!("the range after {start} is not UTF-8"),
            }
        })?;
        Ok(EtcdctlPager::new(client, pod, start, Some(end), page_size))
    }

    /// The revision the pages are read at (0 before the first page).
    pub fn revision(&self) -> i64 {
        self.revision
    }

    /// What a scan reports as its revision, as [`crate::scan::scan`] does: a single key's mod revision, a range's
    /// read revision.
    pub fn scan_revision(&self) -> i64 {
        if self.end.is_none() {
            self.last_mod_revision
        } else {
            self.revision
        }
    }

    /// The mod revision of the last key read (0 if none): a single-key read reports it as its revision, as the
    /// direct scan does.
    pub fn last_mod_revision(&self) -> i64 {
        self.last_mod_revision
    }

    /// How many execs were made.
    pub fn round_trips(&self) -> u64 {
        self.round_trips
    }
}

impl Pages for EtcdctlPager<'_> {
    type Kv = KeyValue;
    type Error = PodExecError;

    /// The next page, `None` after the last.
    async fn next_page(&mut self) -> Result<Option<Vec<KeyValue>>, PodExecError> {
        if self.done {
            return Ok(None);
        }
        let mut args = vec!["get".to_string(), self.start.clone()];
        if let Some(end) = &self.end {
            args.push(end.clone());
            let limit = self.limit.get() + i64::from(self.skip_first);
            args.push(format!("--limit={limit}"));
        }
        if self.revision > 0 {
            args.push(format!("--rev={}", self.revision));
        }
        args.push("-w".into());
        args.push("json".into());
        let out = exec(self.client, self.pod, self.pod.etcdctl(&args)).await?;
        self.round_trips += 1;
        if out.code != 0 {
            return Err(PodExecError::Command {
                pod: self.pod.name.clone(),
                code: out.code,
                stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            });
        }
        let page = parse_range_json(&out.stdout).map_err(|message| PodExecError::Protocol {
            pod: self.pod.name.clone(),
            message,
        })?;
        tracing::debug!(
            keys = page.kvs.len(),
            more = page.more,
            revision = page.header.revision,
            "etcd range via pod exec"
        );
        if self.revision == 0 {
            self.revision = page.header.revision;
        }
        self.last_mod_revision = page.last_mod_revision;
        let mut kvs = page.kvs;
        if self.skip_first && !kvs.is_empty() && kvs[0].0 == self.start.as_bytes() {
            kvs.remove(0);
        }
        match (&self.end, page.more, kvs.last()) {
            (Some(_), true, Some((last, _))) => {
                self.start =
                    String::from_utf8(last.clone()).map_err(|_| PodExecError::Protocol {
                        pod: self.pod.name.clone(),
                        message: "a key is not UTF-8 and cannot be passed to etcdctl".into(),
                    })?;
                self.skip_first = true;
            }
            _ => self.done = true,
        }
        Ok(Some(kvs))
    }
}

/// Decode `etcdctl get -w json` output into (key, value) pairs.
fn parse_range_json(stdout: &[u8]) -> Result<RangeDecoded, String> {
    let r: RangeJson = serde_json::from_slice(stdout)
        .map_err(|e| format!("etcdctl printed something that is not its JSON output: {e}"))?;
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut kvs = Vec::with_capacity(r.kvs.len());
    let last_mod_revision = r.kvs.last().map_or(0, |kv| kv.mod_revision);
    for kv in r.kvs {
        let key = b64
            .decode(&kv.key)
            .map_err(|e| format!("etcdctl JSON: key is not base64: {e}"))?;
        let value = b64
            .decode(&kv.value)
            .map_err(|e| format!("etcdctl JSON: value is not base64: {e}"))?;
        kvs.push((key, value));
    }
    Ok(RangeDecoded {
        header: r.header,
        kvs,
        more: r.more,
        last_mod_revision,
    })
}

struct RangeDecoded {
    header: HeaderJson,
    kvs: Vec<KeyValue>,
    more: bool,
    last_mod_revision: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kubeadm_pod() -> Pod {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "etcd-node1", "namespace": "kube-system",
                         "labels": {"component": "etcd", "tier": "control-plane"}},
            "spec": {"containers": [{"name": "etcd", "command": [
                "etcd", "--advertise-client-urls=https://10.0.0.10:2379",
                "--cert-file=/etc/kubernetes/pki/etcd/server.crt",
                "--key-file=/etc/kubernetes/pki/etcd/server.key",
                "--listen-client-urls=https://10.0.0.10:2379,https://127.0.0.1:2379",
                "--trusted-ca-file=/etc/kubernetes/pki/etcd/ca.crt"]}]}
        }))
        .unwrap()
    }

    #[test]
    fn endpoint_and_certificates_come_from_the_etcd_flags() {
        let p = EtcdPod::from_pod(&kubeadm_pod()).unwrap();
        assert_eq!(p.endpoint, "https://127.0.0.1:2379");
        assert_eq!(p.container, "etcd");
        assert_eq!(p.cacert, "/etc/kubernetes/pki/etcd/ca.crt");
        assert_eq!(p.cert, "/etc/kubernetes/pki/etcd/server.crt");
        assert_eq!(p.key, "/etc/kubernetes/pki/etcd/server.key");
        let argv = p.etcdctl(&["get".into(), "/registry/x".into()]);
        assert_eq!(argv[0], "etcdctl");
        assert!(argv.contains(&"--cacert=/etc/kubernetes/pki/etcd/ca.crt".to_string()));
        assert_eq!(argv[argv.len() - 1], "/registry/x");
    }

    #[test]
    fn a_pod_without_the_tls_flags_is_rejected_naming_the_flag() {
        let mut pod = kubeadm_pod();
        let c = &mut pod.spec.as_mut().unwrap().containers[0];
        c.command
            .as_mut()
            .unwrap()
            .retain(|a| !a.starts_with("--key-file"));
        let e = EtcdPod::from_pod(&pod).unwrap_err().to_string();
        assert!(
            e.contains("kube-system/etcd-node1") && e.contains("--key-file"),
            "{e}"
        );
    }

    #[test]
    fn etcdctl_json_decodes_to_raw_bytes() {
        // etcdctl 3.4 `get -w json`: uint64 ids beyond i64, keys and values base64.
        let out = br#"{"header":{"cluster_id":14841639068965178418,"member_id":10276657743932975437,"revision":45,"raft_term":2},"kvs":[{"key":"L3JlZ2lzdHJ5L3NlY3JldHMvZGVmYXVsdC9kZW1v","create_revision":45,"mod_revision":45,"version":1,"value":"azhzAAo="}],"more":true,"count":3}"#;
        let r = parse_range_json(out).unwrap();
        assert_eq!(r.header.revision, 45);
        assert!(r.more);
        assert_eq!(r.kvs[0].0, b"/registry/secrets/default/demo");
        assert_eq!(r.kvs[0].1, b"k8s\x00\n");
        // No keys: etcdctl omits "kvs".
        let r = parse_range_json(br#"{"header":{"revision":7}}"#).unwrap();
        assert!(r.kvs.is_empty() && !r.more);
        assert!(parse_range_json(b"Error: context deadline exceeded").is_err());
    }

    #[test]
    fn flags_last_wins_and_take_separate_values() {
        let mut pod = kubeadm_pod();
        let c = &mut pod.spec.as_mut().unwrap().containers[0];
        c.command
            .as_mut()
            .unwrap()
            .extend(["--cert-file", "/a", "--cert-file=/b", "--cert-files=/c"].map(String::from));
        assert_eq!(EtcdPod::from_pod(&pod).unwrap().cert, "/b");
    }
}
