//! kube-apiserver command-line flags, parsed with pflag's rules (`--name=value`, `--name value`, bare booleans).
//!
//! Only the flags listed in [`Options`] change behaviour; every other kube-apiserver flag is accepted and
//! ignored. An unknown flag fails with pflag's message `unknown flag: --foo` (kube-apiserver exits with it).

use std::collections::BTreeMap;

use super::StartError;

/// Boolean kube-apiserver flags (`--name` alone means true). Source: `kube-apiserver --help` (1.32).
const BOOL_FLAGS: &[&str] = &[
    "allow-privileged",
    "anonymous-auth",
    "contention-profiling",
    "disable-http2-serving",
    "enable-aggregator-routing",
    "enable-bootstrap-token-auth",
    "enable-garbage-collector",
    "enable-logs-handler",
    "enable-priority-and-fairness",
    "encryption-provider-config-automatic-reload",
    "audit-log-compress",
    "audit-log-batch-throttle-enable",
    "audit-webhook-batch-throttle-enable",
    "audit-log-truncate-enabled",
    "audit-webhook-truncate-enabled",
    "kubelet-https",
    "permit-address-sharing",
    "permit-port-sharing",
    "profiling",
    "service-account-extend-token-expiration",
    "service-account-lookup",
    "watch-cache",
    "alsologtostderr",
    "logtostderr",
    "log-json-split-stream",
    "one-output",
    "skip-headers",
    "skip-log-headers",
    "enable-swagger-ui",
    "insecure-skip-tls-verify-backend",
];

/// Value-taking kube-apiserver flags that are accepted and ignored (kubeadm's, and common extras).
const IGNORED_VALUE_FLAGS: &[&str] = &[
    "admission-control",
    "admission-control-config-file",
    "advertise-address",
    "aggregator-reject-forwarding-redirect",
    "api-audiences",
    "apiserver-count",
    "audit-log-batch-buffer-size",
    "audit-log-batch-max-size",
    "audit-log-batch-max-wait",
    "audit-log-format",
    "audit-log-maxage",
    "audit-log-maxbackup",
    "audit-log-maxsize",
    "audit-log-mode",
    "audit-log-path",
    "audit-log-version",
    "audit-policy-file",
    "audit-webhook-config-file",
    "audit-webhook-initial-backoff",
    "audit-webhook-mode",
    "audit-webhook-version",
    "authentication-config",
    "authentication-token-webhook-cache-ttl",
    "authentication-token-webhook-config-file",
    "authentication-token-webhook-version",
    "authorization-config",
    "authorization-webhook-cache-authorized-ttl",
    "authorization-webhook-cache-unauthorized-ttl",
    "authorization-webhook-config-file",
    "authorization-webhook-version",
    "cert-dir",
    "cloud-config",
    "cloud-provider",
    "cloud-provider-gce-l7lb-src-cidrs",
    "cloud-provider-gce-lb-src-cidrs",
    "cors-allowed-origins",
    "default-not-ready-toleration-seconds",
    "default-unreachable-toleration-seconds",
    "default-watch-cache-size",
    "delete-collection-workers",
    "disable-admission-plugins",
    "disabled-metrics",
    "egress-selector-config-file",
    "emulated-version",
    "enable-admission-plugins",
    "endpoint-reconciler-type",
    "etcd-compaction-interval",
    "etcd-count-metric-poll-period",
    "etcd-db-metric-poll-interval",
    "etcd-healthcheck-timeout",
    "etcd-readycheck-timeout",
    "etcd-servers-overrides",
    "event-ttl",
    "external-hostname",
    "feature-gates",
    "goaway-chance",
    "http2-max-streams-per-connection",
    "kubelet-certificate-authority",
    "kubelet-client-certificate",
    "kubelet-client-key",
    "kubelet-port",
    "kubelet-preferred-address-types",
    "kubelet-read-only-port",
    "kubelet-timeout",
    "kubernetes-service-node-port",
    "lease-reuse-duration-seconds",
    "livez-grace-period",
    "log-dir",
    "log-file",
    "log-file-max-size",
    "log-flush-frequency",
    "logging-format",
    "max-connection-bytes-per-sec",
    "max-mutating-requests-inflight",
    "max-requests-inflight",
    "min-request-timeout",
    "oidc-ca-file",
    "oidc-client-id",
    "oidc-groups-claim",
    "oidc-groups-prefix",
    "oidc-issuer-url",
    "oidc-required-claim",
    "oidc-signing-algs",
    "oidc-username-claim",
    "oidc-username-prefix",
    "peer-advertise-ip",
    "peer-advertise-port",
    "peer-ca-file",
    "proxy-client-cert-file",
    "proxy-client-key-file",
    "request-timeout",
    "requestheader-allowed-names",
    "requestheader-client-ca-file",
    "requestheader-extra-headers-prefix",
    "requestheader-group-headers",
    "requestheader-uid-headers",
    "requestheader-username-headers",
    "runtime-config",
    "service-account-issuer",
    "service-account-jwks-uri",
    "service-account-key-file",
    "service-account-max-token-expiration",
    "service-account-signing-endpoint",
    "service-account-signing-key-file",
    "service-cluster-ip-range",
    "service-node-port-range",
    "show-hidden-metrics-for-version",
    "shutdown-delay-duration",
    "shutdown-send-retry-after",
    "shutdown-watch-termination-grace-period",
    "storage-backend",
    "strict-transport-security-directives",
    "tls-cipher-suites",
    "tls-min-version",
    "tls-sni-cert-key",
    "token-auth-file",
    "tracing-config-file",
    "v",
    "vmodule",
    "watch-cache-sizes",
    "insecure-port",
    "insecure-bind-address",
    "port",
    "address",
    "stderrthreshold",
    "log-backtrace-at",
    "log-text-info-buffer-size",
    "log-json-info-buffer-size",
    "requestheader-allowed-names-extra",
    "service-account-api-audiences",
    "api-server-count",
];

/// Flags with behaviour in this server.
const VALUE_FLAGS: &[&str] = &[
    "secure-port",
    "bind-address",
    "tls-cert-file",
    "tls-private-key-file",
    "client-ca-file",
    "etcd-servers",
    "etcd-cafile",
    "etcd-certfile",
    "etcd-keyfile",
    "etcd-prefix",
    "storage-media-type",
    "encryption-provider-config",
    "authorization-mode",
];

/// The parsed kube-apiserver options this server honours. Paths are container paths (resolve them first).
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    /// `--secure-port` (default 6443).
    pub secure_port: u16,
    /// `--bind-address` (default 0.0.0.0; the sandbox binds 127.0.0.1 when it is 0.0.0.0).
    pub bind_address: String,
    /// `--advertise-address`.
    pub advertise_address: Option<String>,
    /// `--tls-cert-file`.
    pub tls_cert_file: Option<String>,
    /// `--tls-private-key-file`.
    pub tls_private_key_file: Option<String>,
    /// `--client-ca-file`.
    pub client_ca_file: Option<String>,
    /// `--etcd-servers`, comma separated.
    pub etcd_servers: Vec<String>,
    /// `--etcd-cafile`.
    pub etcd_cafile: Option<String>,
    /// `--etcd-certfile`.
    pub etcd_certfile: Option<String>,
    /// `--etcd-keyfile`.
    pub etcd_keyfile: Option<String>,
    /// `--etcd-prefix` (default `/registry`).
    pub etcd_prefix: String,
    /// `--storage-media-type` (kube-apiserver default `application/vnd.kubernetes.protobuf`).
    pub storage_media_type: String,
    /// `--encryption-provider-config`.
    pub encryption_provider_config: Option<String>,
    /// `--encryption-provider-config-automatic-reload`.
    pub encryption_provider_config_automatic_reload: bool,
    /// `--authorization-mode` (kube-apiserver's default is AlwaysAllow; kubeadm sets Node,RBAC).
    pub authorization_modes: Vec<String>,
    /// `--anonymous-auth` (default true).
    pub anonymous_auth: bool,
    /// Every flag as given (name → last value), for diagnostics.
    pub raw: BTreeMap<String, String>,
}

/// `storage-media-type` values kube-apiserver accepts (apiserver `pkg/server/options/etcd.go`).
pub const STORAGE_MEDIA_TYPES: &[&str] = &[
    "application/json",
    "application/vnd.kubernetes.protobuf",
    "application/yaml",
];

impl Options {
    /// Parse a full command line (`command[0]` is the program name). Positional arguments and unknown
    /// flags are errors with kube-apiserver's messages.
    pub fn parse(command: &[String]) -> Result<Self, StartError> {
        let mut raw = BTreeMap::new();
        let mut args = command.iter().skip(1).peekable();
        while let Some(arg) = args.next() {
            let Some(body) = arg.strip_prefix("--") else {
                if let Some(short) = arg.strip_prefix('-').filter(|s| !s.is_empty()) {
                    // pflag: shorthand flags; kube-apiserver defines only -v.
                    let (name, value) = short.split_once('=').unwrap_or((short, ""));
                    if name != "v" {
                        return Err(StartError::Flags(format!(
                            "unknown shorthand flag: '{}' in {arg}",
                            name.chars().next().unwrap_or('?')
                        )));
                    }
                    let value = if value.is_empty() {
                        args.next().cloned().unwrap_or_default()
                    } else {
                        value.to_string()
                    };
                    raw.insert("v".into(), value);
                    continue;
                }
                // kube-apiserver takes no positional arguments (cobra Args check in app/server.go).
                return Err(StartError::Flags(format!(
                    "\"kube-apiserver\" does not take any arguments, got [\"{arg}\"]"
                )));
            };
            let (name, inline) = match body.split_once('=') {
                Some((n, v)) => (n, Some(v.to_string())),
                None => (body, None),
            };
            let value = if BOOL_FLAGS.contains(&name) {
                let v = inline.unwrap_or_else(|| "true".to_string());
                if parse_bool(&v).is_none() {
                    return Err(StartError::Flags(format!(
                        "invalid argument \"{v}\" for \"--{name}\" flag: strconv.ParseBool: parsing \"{v}\": invalid syntax"
                    )));
                }
                v
            } else if VALUE_FLAGS.contains(&name) || IGNORED_VALUE_FLAGS.contains(&name) {
                match inline {
                    Some(v) => v,
                    None => match args.next() {
                        Some(v) => v.clone(),
                        None => {
                            return Err(StartError::Flags(format!(
                                "flag needs an argument: --{name}"
                            )));
                        }
                    },
                }
            } else {
                return Err(StartError::Flags(format!("unknown flag: --{name}")));
            };
            raw.insert(name.to_string(), value);
        }
        Self::from_raw(raw)
    }

    fn from_raw(raw: BTreeMap<String, String>) -> Result<Self, StartError> {
        let get = |n: &str| raw.get(n).cloned().filter(|v| !v.is_empty());
        let secure_port = match raw.get("secure-port") {
            None => 6443,
            Some(v) => {
                let p: i64 = v.parse().map_err(|_| {
                    StartError::Flags(format!(
                        "invalid argument \"{v}\" for \"--secure-port\" flag: strconv.ParseInt: parsing \"{v}\": invalid syntax"
                    ))
                })?;
                // apiserver pkg/server/options/serving.go Validate.
                if !(1..=65535).contains(&p) {
                    return Err(StartError::Flags(format!(
                        "--secure-port {p} must be between 1 and 65535, inclusive. It cannot be turned off with 0"
                    )));
                }
                p as u16
            }
        };
        let etcd_servers: Vec<String> = get("etcd-servers")
            .map(|v| {
                v.split(',')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        // apiserver pkg/server/options/etcd.go Validate.
        if etcd_servers.is_empty() {
            return Err(StartError::Flags("--etcd-servers must be specified".into()));
        }
        let storage_media_type = get("storage-media-type")
            .unwrap_or_else(|| "application/vnd.kubernetes.protobuf".into());
        if !STORAGE_MEDIA_TYPES.contains(&storage_media_type.as_str()) {
            return Err(StartError::Flags(format!(
                "--storage-media-type \"{storage_media_type}\" invalid, allowed values: {}",
                STORAGE_MEDIA_TYPES.join(", ")
            )));
        }
        let reload = raw
            .get("encryption-provider-config-automatic-reload")
            .and_then(|v| parse_bool(v))
            .unwrap_or(false);
        let encryption_provider_config = get("encryption-provider-config");
        if reload && encryption_provider_config.is_none() {
            return Err(StartError::Flags(
                "--encryption-provider-config-automatic-reload must be set with --encryption-provider-config".into(),
            ));
        }
        let authorization_modes: Vec<String> = get("authorization-mode")
            .map(|v| v.split(',').map(|s| s.trim().to_string()).collect())
            .unwrap_or_else(|| vec!["AlwaysAllow".into()]);
        // kubernetes pkg/kubeapiserver/options/authorization.go: known modes.
        for m in &authorization_modes {
            if ![
                "AlwaysAllow",
                "AlwaysDeny",
                "ABAC",
                "Webhook",
                "RBAC",
                "Node",
            ]
            .contains(&m.as_str())
            {
                return Err(StartError::Flags(format!(
                    "authorization-mode \"{m}\" is not a valid mode"
                )));
            }
        }
        let mut prefix = get("etcd-prefix").unwrap_or_else(|| "/registry".into());
        // apiserver storage: path.Join("/", prefix).
        if !prefix.starts_with('/') {
            prefix.insert(0, '/');
        }
        while prefix.len() > 1 && prefix.ends_with('/') {
            prefix.pop();
        }
        Ok(Options {
            secure_port,
            bind_address: get("bind-address").unwrap_or_else(|| "0.0.0.0".into()),
            advertise_address: get("advertise-address"),
            tls_cert_file: get("tls-cert-file"),
            tls_private_key_file: get("tls-private-key-file"),
            client_ca_file: get("client-ca-file"),
            etcd_servers,
            etcd_cafile: get("etcd-cafile"),
            etcd_certfile: get("etcd-certfile"),
            etcd_keyfile: get("etcd-keyfile"),
            etcd_prefix: prefix,
            storage_media_type,
            encryption_provider_config,
            encryption_provider_config_automatic_reload: reload,
            authorization_modes,
            anonymous_auth: raw
                .get("anonymous-auth")
                .and_then(|v| parse_bool(v))
                .unwrap_or(true),
            raw,
        })
    }

    /// Whether RBAC authorization is on (`--authorization-mode` contains `RBAC`).
    pub fn rbac(&self) -> bool {
        self.authorization_modes.iter().any(|m| m == "RBAC")
    }
}

/// Go's `strconv.ParseBool`.
fn parse_bool(v: &str) -> Option<bool> {
    match v {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd(args: &[&str]) -> Vec<String> {
        std::iter::once("kube-apiserver")
            .chain(args.iter().copied())
            .map(String::from)
            .collect()
    }

    #[test]
    fn kubeadm_flags_parse() {
        // The flag set kubeadm 1.29+ writes into manifests/kube-apiserver.yaml.
        let full = cmd(&[
            "--advertise-address=10.0.0.3",
            "--allow-privileged=true",
            "--authorization-mode=Node,RBAC",
            "--client-ca-file=/etc/kubernetes/pki/ca.crt",
            "--enable-admission-plugins=NodeRestriction",
            "--enable-bootstrap-token-auth=true",
            "--etcd-cafile=/etc/kubernetes/pki/etcd/ca.crt",
            "--etcd-certfile=/etc/kubernetes/pki/apiserver-etcd-client.crt",
            "--etcd-keyfile=/etc/kubernetes/pki/apiserver-etcd-client.key",
            "--etcd-servers=https://127.0.0.1:2379",
            "--kubelet-client-certificate=/etc/kubernetes/pki/apiserver-kubelet-client.crt",
            "--kubelet-client-key=/etc/kubernetes/pki/apiserver-kubelet-client.key",
            "--kubelet-preferred-address-types=InternalIP,ExternalIP,Hostname",
            "--proxy-client-cert-file=/etc/kubernetes/pki/front-proxy-client.crt",
            "--proxy-client-key-file=/etc/kubernetes/pki/front-proxy-client.key",
            "--requestheader-allowed-names=front-proxy-client",
            "--requestheader-client-ca-file=/etc/kubernetes/pki/front-proxy-ca.crt",
            "--requestheader-extra-headers-prefix=X-Remote-Extra-",
            "--requestheader-group-headers=X-Remote-Group",
            "--requestheader-username-headers=X-Remote-User",
            "--secure-port=6443",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            "--service-account-key-file=/etc/kubernetes/pki/sa.pub",
            "--service-account-signing-key-file=/etc/kubernetes/pki/sa.key",
            "--service-cluster-ip-range=10.96.0.0/12",
            "--tls-cert-file=/etc/kubernetes/pki/apiserver.crt",
            "--tls-private-key-file=/etc/kubernetes/pki/apiserver.key",
        ]);
        let o = Options::parse(&full).unwrap();
        assert_eq!(o.secure_port, 6443);
        assert_eq!(o.etcd_servers, vec!["https://127.0.0.1:2379"]);
        assert_eq!(
            o.client_ca_file.as_deref(),
            Some("/etc/kubernetes/pki/ca.crt")
        );
        assert!(o.rbac());
        assert_eq!(o.etcd_prefix, "/registry");
        assert_eq!(o.storage_media_type, "application/vnd.kubernetes.protobuf");
    }

    #[test]
    fn errors_match_kube_apiserver() {
        let e = Options::parse(&cmd(&["--etcd-servers=http://x", "--foo=1"])).unwrap_err();
        assert_eq!(e.to_string(), "unknown flag: --foo");
        let e = Options::parse(&cmd(&["--secure-port=6443"])).unwrap_err();
        assert_eq!(e.to_string(), "--etcd-servers must be specified");
        let e = Options::parse(&cmd(&["--etcd-servers=a", "--secure-port=0"])).unwrap_err();
        assert!(e.to_string().contains("It cannot be turned off with 0"));
        let e = Options::parse(&cmd(&[
            "--etcd-servers=a",
            "--encryption-provider-config-automatic-reload",
        ]))
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "--encryption-provider-config-automatic-reload must be set with --encryption-provider-config"
        );
        let e = Options::parse(&cmd(&[
            "--etcd-servers=a",
            "--storage-media-type=text/plain",
        ]))
        .unwrap_err();
        assert!(
            e.to_string()
                .starts_with("--storage-media-type \"text/plain\" invalid")
        );
    }

    #[test]
    fn value_forms_and_prefix() {
        let o = Options::parse(&cmd(&[
            "--etcd-servers",
            "https://a:1,https://b:2",
            "--etcd-prefix=custom/",
            "--allow-privileged",
            "--storage-media-type=application/json",
        ]))
        .unwrap();
        assert_eq!(o.etcd_servers.len(), 2);
        assert_eq!(o.etcd_prefix, "/custom");
        assert_eq!(o.storage_media_type, "application/json");
        assert!(!o.rbac());
    }
}
