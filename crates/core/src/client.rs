//! The kubectl flag set shared by every plugin (`--kubeconfig`, `--context`, `--as`, ...) and the API client built from it.
//!
//! Every plugin does `#[command(flatten)] kube: ConfigFlags` and then
//! `flags.resolve().await?` (pure kubeconfig resolution: context, cluster, user, namespace, server, CA) or
//! `flags.client().await?` (a [`kube::Client`] plus the [`ResolvedConfig`] it was built from).
//!
//! Loading follows client-go `tools/clientcmd/loader.go` (`ClientConfigLoadingRules.Load`) and
//! cli-runtime `pkg/genericclioptions/config_flags.go`:
//! 1. `--kubeconfig FILE`: only that file; it must exist; no merging.
//! 2. else `$KUBECONFIG`: a `:`-separated list; empty entries and missing files are skipped; the first file to set a
//!    value or a named cluster/user/context wins, later files never change it (`current-context` included).
//! 3. else `~/.kube/config` if it exists.
//! 4. else the plugin's fallback paths ([`ConfigFlags::with_fallback`], e.g. `kubectl encrypt` uses
//!    `<root>/etc/kubernetes/admin.conf`), first existing one.
//!
//! Then context = `--context` or `current-context`; `--cluster`/`--user` override the context's; namespace =
//! `-n` > context namespace > `default`; `--server`, `--certificate-authority`, `--tls-server-name` override the
//! cluster entry; `--as`/`--as-group`/`--as-uid` become the `Impersonate-*` headers.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine as _;
use kube::config::{
    AuthInfo, Cluster, Context, ExecAuthCluster, Kubeconfig, KubeconfigError, NamedCluster,
    NamedContext,
};

use crate::cli::error_chain;
use crate::config::GoDuration;

mod proxy;

pub use proxy::{ProxyChoice, ProxyEnv, use_proxy};

/// Errors while resolving the kubeconfig or building a client. Messages name the file or flag to fix.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Nothing to load and no `--server` either.
    #[error("no kubeconfig found (looked at {searched}): set KUBECONFIG or --kubeconfig")]
    NoKubeconfig {
        /// The places that were tried, comma separated.
        searched: String,
    },
    /// `--kubeconfig FILE` names a file that does not exist.
    #[error("--kubeconfig {}: file does not exist", .path.display())]
    ExplicitKubeconfigMissing {
        /// The path given.
        path: PathBuf,
    },
    /// A kubeconfig file could not be read or parsed.
    #[error("kubeconfig {}: {source}", .path.display())]
    ReadKubeconfig {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        #[source]
        source: KubeconfigError,
    },
    /// Two files of the `$KUBECONFIG` list cannot be merged (different kind/apiVersion).
    #[error("kubeconfig {}: cannot merge with the files before it in KUBECONFIG: {source}", .path.display())]
    Merge {
        /// The file that did not merge.
        path: PathBuf,
        /// What went wrong.
        #[source]
        source: KubeconfigError,
    },
    /// No `--context` and no `current-context`.
    #[error(
        "kubeconfig {files} has no current-context: pass --context NAME or run `kubectl config use-context NAME`"
    )]
    NoCurrentContext {
        /// The loaded files.
        files: String,
    },
    /// The selected context is not defined.
    #[error(
        "context {name:?} is not defined in kubeconfig {files}; see `kubectl config get-contexts`"
    )]
    ContextNotFound {
        /// Context name.
        name: String,
        /// The loaded files.
        files: String,
    },
    /// The selected cluster is not defined.
    #[error(
        "cluster {name:?} is not defined in kubeconfig {files}; see `kubectl config get-clusters`"
    )]
    ClusterNotFound {
        /// Cluster name.
        name: String,
        /// The loaded files.
        files: String,
    },
    /// `--user NAME` names an undefined user.
    #[error("user {name:?} is not defined in kubeconfig {files}; see `kubectl config get-users`")]
    UserNotFound {
        /// User name.
        name: String,
        /// The loaded files.
        files: String,
    },
    /// The cluster entry has no `server`.
    #[error(
        "cluster {name:?} in kubeconfig {files} has no server: set clusters[].cluster.server or pass --server"
    )]
    NoServer {
        /// Cluster name.
        name: String,
        /// The loaded files.
        files: String,
    },
    /// The CA bundle (file or data) could not be read.
    #[error("certificate authority of cluster {cluster:?}: {message}")]
    CertificateAuthority {
        /// Cluster name.
        cluster: String,
        /// What went wrong (path and reason).
        message: String,
    },
    /// `--as-group`/`--as-uid` without `--as`.
    #[error(
        "--as-group and --as-uid need --as USER (the API server refuses them without Impersonate-User)"
    )]
    ImpersonationWithoutUser,
    /// kube-rs refused the resolved configuration.
    #[error("kubeconfig {files}: {source}")]
    Config {
        /// The loaded files.
        files: String,
        /// What went wrong.
        #[source]
        source: KubeconfigError,
    },
    /// The cluster's `server` is not a URL.
    #[error("cluster {name:?} in kubeconfig {files}: server {server:?} is not a URL: {message}")]
    BadServer {
        /// Cluster name.
        name: String,
        /// The loaded files.
        files: String,
        /// The value.
        server: String,
        /// Why.
        message: String,
    },
    /// A proxy setting (`proxy-url` of the cluster, `HTTPS_PROXY`, `HTTP_PROXY`) cannot be used.
    #[error("{origin} {value:?}: {message}")]
    Proxy {
        /// Where the value comes from: `proxy-url of cluster "NAME"`, `HTTPS_PROXY`, `HTTP_PROXY`.
        origin: String,
        /// The value, with any user and password hidden.
        value: String,
        /// What is wrong.
        message: String,
    },
    /// The HTTP client could not be built (TLS setup, bad certificate or key). The cause is only in the
    /// message, not also a `source` (plugins print the chain: it would say it twice).
    #[error("cannot build the Kubernetes client for {server}: {message}")]
    Client {
        /// The API server URL.
        server: String,
        /// What went wrong (kube-rs's error and its causes).
        message: String,
    },
}

/// `--request-timeout`: `None` = no timeout (kubectl's default `"0"`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RequestTimeout(pub Option<Duration>);

/// Parses kubectl's `--request-timeout`: a bare non-negative integer is seconds, otherwise a Go duration
/// (`1h2m3.5s`, `500ms`, `10us`); zero means no timeout. Mirrors client-go `tools/clientcmd/helpers.go`
/// `ParseTimeout`.
pub fn parse_request_timeout(s: &str) -> Result<RequestTimeout, String> {
    const HINT: &str = "invalid timeout value: must be a single integer in seconds, or an integer followed by a unit (e.g. 1s | 2m | 3h)";
    let s = s.trim();
    let d = if let Ok(secs) = s.parse::<u64>() {
        Duration::from_secs(secs)
    } else {
        GoDuration::parse(s)
            .ok()
            .and_then(GoDuration::to_std)
            .ok_or_else(|| format!("{HINT}, got {s:?}"))?
    };
    Ok(RequestTimeout(if d.is_zero() { None } else { Some(d) }))
}

/// A timeout flag that must be more than zero (`--dial-timeout`, `kubectl encrypt --timeout`): what
/// `--request-timeout` accepts (bare seconds or a Go duration), except zero.
pub fn parse_positive_timeout(s: &str) -> Result<Duration, String> {
    parse_request_timeout(s)?
        .0
        .ok_or_else(|| format!("the timeout must be more than 0, got {s:?}"))
}

/// kubectl's connection flag set (cli-runtime `genericclioptions.ConfigFlags`). Flatten it into every plugin:
/// `#[command(flatten)] kube: atrest_core::client::ConfigFlags`. All flags are global, so they also work after a
/// subcommand.
#[derive(Debug, Clone, Default, clap::Args)]
#[command(next_help_heading = "Kubernetes connection (as kubectl)")]
pub struct ConfigFlags {
    /// Path to the kubeconfig file to use (only this file; $KUBECONFIG is then ignored).
    #[arg(long, value_name = "FILE", global = true)]
    pub kubeconfig: Option<PathBuf>,
    /// The name of the kubeconfig context to use.
    #[arg(long, value_name = "NAME", global = true)]
    pub context: Option<String>,
    /// The name of the kubeconfig cluster to use.
    #[arg(long, value_name = "NAME", global = true)]
    pub cluster: Option<String>,
    /// The name of the kubeconfig user to use.
    #[arg(long, value_name = "NAME", global = true)]
    pub user: Option<String>,
    /// The namespace scope for this request (default: the context's namespace, else `default`).
    #[arg(short = 'n', long, value_name = "NAMESPACE", global = true)]
    pub namespace: Option<String>,
    /// Username to impersonate for the operation (a user or `system:serviceaccount:NS:NAME`).
    #[arg(long = "as", value_name = "USER", global = true)]
    pub as_user: Option<String>,
    /// Group to impersonate for the operation; repeat for several groups.
    #[arg(long = "as-group", value_name = "GROUP", global = true)]
    pub as_group: Vec<String>,
    /// UID to impersonate for the operation.
    #[arg(long = "as-uid", value_name = "UID", global = true)]
    pub as_uid: Option<String>,
    /// How long to wait for one server response: an integer (seconds) or a duration like 1s, 2m, 3h; 0 = no timeout.
    #[arg(long, value_name = "DURATION", default_value = "0", value_parser = parse_request_timeout, global = true)]
    pub request_timeout: RequestTimeout,
    /// The address and port of the Kubernetes API server.
    #[arg(short = 's', long, value_name = "URL", global = true)]
    pub server: Option<String>,
    /// Path to a CA certificate file for the API server's certificate.
    #[arg(long, value_name = "FILE", global = true)]
    pub certificate_authority: Option<PathBuf>,
    /// Server name to use for server certificate validation (default: the server's hostname).
    #[arg(long, value_name = "NAME", global = true)]
    pub tls_server_name: Option<String>,
    /// Kubeconfig files to try when --kubeconfig, $KUBECONFIG and ~/.kube/config give nothing (set by the plugin).
    #[arg(skip)]
    pub fallback_kubeconfigs: Vec<PathBuf>,
}

/// The cluster a resolved configuration talks to: what a new kubeconfig for it needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterInfo {
    /// The kubeconfig cluster name (`kubernetes` on kubeadm clusters).
    pub name: String,
    /// The API server URL (after `--server`).
    pub server: String,
    /// The CA bundle (PEM) that verifies the server, if the kubeconfig or `--certificate-authority` has one.
    pub certificate_authority_pem: Option<Vec<u8>>,
    /// `tls-server-name`, if set.
    pub tls_server_name: Option<String>,
    /// `insecure-skip-tls-verify`.
    pub insecure_skip_tls_verify: bool,
    /// `proxy-url`, if the cluster entry has one.
    pub proxy_url: Option<String>,
}

/// The outcome of resolving [`ConfigFlags`] against the kubeconfig files.
#[derive(Debug, Clone)]
pub struct ResolvedConfig {
    /// The merged kubeconfig with the flag overrides applied to the selected cluster.
    pub kubeconfig: Kubeconfig,
    /// The files it was loaded from, first wins (empty when built from `--server` alone).
    pub files: Vec<PathBuf>,
    /// The selected context name.
    pub context: String,
    /// The selected kubeconfig user name (`None`: anonymous or no user entry).
    pub user: Option<String>,
    /// The effective namespace: `-n` > context namespace > `default`.
    pub namespace: String,
    /// The selected cluster.
    pub cluster: ClusterInfo,
    /// The proxy the requests go through (`None`: direct), see [`proxy`](ProxyEnv).
    pub proxy: Option<ProxyChoice>,
    /// The kube-rs configuration (impersonation, timeout, namespace and proxy applied).
    pub config: kube::Config,
}

impl ResolvedConfig {
    /// Builds a [`kube::Client`] from [`Self::config`].
    pub fn client(&self) -> Result<kube::Client, ClientError> {
        build_client(self.config.clone(), self.proxy.as_ref())
    }

    /// The same connection impersonating `user` with `groups` (as `kubectl --as USER --as-group G`), replacing any
    /// impersonation from the flags.
    pub fn impersonating(&self, user: &str, groups: &[String]) -> kube::Config {
        let mut config = self.config.clone();
        config.auth_info.impersonate = Some(user.to_string());
        config.auth_info.impersonate_groups = if groups.is_empty() {
            None
        } else {
            Some(groups.to_vec())
        };
        config.auth_info.impersonate_uid = None;
        config
    }

    /// The loaded files as one display string.
    pub fn files_display(&self) -> String {
        display_files(&self.files)
    }
}

/// Builds a [`kube::Client`] from a kube-rs configuration (TLS via OpenSSL; the proxy in `config.proxy_url`).
pub fn client_from_config(config: kube::Config) -> Result<kube::Client, ClientError> {
    build_client(config, None)
}

/// The client, with connection failures rewritten to name the server and the way to it (directly, or which proxy
/// from where) once: hyper's own errors name neither ("client error (Connect)", "tunnel error: failed to connect").
fn build_client(
    config: kube::Config,
    proxy: Option<&ProxyChoice>,
) -> Result<kube::Client, ClientError> {
    let server = config.cluster_url.to_string();
    let route = match (proxy, &config.proxy_url) {
        (Some(p), _) => format!(
            "through the proxy {} (from {})",
            proxy::redacted(&p.url.to_string()),
            p.origin
        ),
        (None, Some(u)) => format!("through the proxy {}", proxy::redacted(&u.to_string())),
        (None, None) => "directly".to_string(),
    };
    let builder =
        kube::client::ClientBuilder::try_from(config).map_err(|e| ClientError::Client {
            server: server.clone(),
            message: error_chain(&e),
        })?;
    let name_connect_failures =
        tower::util::MapErrLayer::new(move |e: tower::BoxError| match connect_failure(&*e) {
            Some(cause) => Box::new(ConnectFailure(format!(
                "cannot connect to {server} {route}: {cause}"
            ))) as tower::BoxError,
            None => e,
        });
    Ok(builder.with_layer(&name_connect_failures).build())
}

/// The causes of a connection failure (hyper-util's `Connect` errors), if `e` is one.
fn connect_failure(e: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut cur = Some(e);
    while let Some(c) = cur {
        if let Some(h) = c.downcast_ref::<hyper_util::client::legacy::Error>()
            && h.is_connect()
        {
            return Some(match std::error::Error::source(h) {
                Some(cause) => error_chain(cause),
                None => h.to_string(),
            });
        }
        cur = c.source();
    }
    None
}

/// A connection failure with the server, the route and the causes in one message (no `source`: it would repeat).
#[derive(Debug)]
struct ConnectFailure(String);

impl std::fmt::Display for ConnectFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConnectFailure {}

/// Where the process looks for kubeconfigs (`$KUBECONFIG`, the home directory) and the proxy variables (separate
/// so tests can set them).
#[derive(Debug, Clone, Default)]
pub struct KubeconfigEnv {
    /// The value of `$KUBECONFIG`.
    pub kubeconfig: Option<OsString>,
    /// The home directory (`~/.kube/config` lives under it).
    pub home: Option<PathBuf>,
    /// `HTTPS_PROXY`, `HTTP_PROXY`, `NO_PROXY`.
    pub proxy: ProxyEnv,
}

impl KubeconfigEnv {
    /// Reads `$KUBECONFIG`, the home directory and the proxy variables of this process.
    pub fn from_process() -> Self {
        Self {
            kubeconfig: std::env::var_os("KUBECONFIG"),
            home: std::env::home_dir(),
            proxy: ProxyEnv::from_process(),
        }
    }

    /// Only the proxy variables of this process: no `$KUBECONFIG`, no home (for a kubeconfig named explicitly).
    pub fn proxy_only() -> Self {
        Self {
            proxy: ProxyEnv::from_process(),
            ..Self::default()
        }
    }
}

/// Kubeconfig files merged first-wins, with the list of files actually read.
#[derive(Debug, Clone)]
pub struct LoadedKubeconfig {
    /// The merged content.
    pub kubeconfig: Kubeconfig,
    /// The files read, in precedence order.
    pub files: Vec<PathBuf>,
}

fn display_files(files: &[PathBuf]) -> String {
    if files.is_empty() {
        return "(none; from flags)".to_string();
    }
    files
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

fn read_kubeconfig(path: &Path) -> Result<Kubeconfig, ClientError> {
    Kubeconfig::read_from(path).map_err(|source| ClientError::ReadKubeconfig {
        path: path.to_path_buf(),
        source,
    })
}

/// Reads and merges `paths` in order, first file wins (client-go loader.go `Load`).
pub fn merge_kubeconfig_files(paths: &[PathBuf]) -> Result<LoadedKubeconfig, ClientError> {
    let mut merged: Option<Kubeconfig> = None;
    for path in paths {
        let next = read_kubeconfig(path)?;
        merged = Some(match merged {
            None => next,
            // kube-rs `Kubeconfig::merge` keeps the first value of every field and named entry.
            Some(m) => m.merge(next).map_err(|source| ClientError::Merge {
                path: path.clone(),
                source,
            })?,
        });
    }
    Ok(LoadedKubeconfig {
        kubeconfig: merged.unwrap_or_default(),
        files: paths.to_vec(),
    })
}

impl ConfigFlags {
    /// Adds kubeconfig paths tried when nothing else is found (e.g. `<root>/etc/kubernetes/admin.conf`).
    pub fn with_fallback(mut self, path: impl Into<PathBuf>) -> Self {
        self.fallback_kubeconfigs.push(path.into());
        self
    }

    /// Finds and merges the kubeconfig files (see the module doc for the order). `Ok(None)`: nothing found.
    pub fn load_kubeconfig(
        &self,
        env: &KubeconfigEnv,
    ) -> Result<Option<LoadedKubeconfig>, ClientError> {
        Ok(self.load_kubeconfig_searched(env)?.0)
    }

    fn load_kubeconfig_searched(
        &self,
        env: &KubeconfigEnv,
    ) -> Result<(Option<LoadedKubeconfig>, Vec<PathBuf>), ClientError> {
        if let Some(path) = &self.kubeconfig {
            if !path.exists() {
                return Err(ClientError::ExplicitKubeconfigMissing { path: path.clone() });
            }
            return Ok((
                Some(merge_kubeconfig_files(std::slice::from_ref(path))?),
                vec![],
            ));
        }
        let mut searched = Vec::new();
        let mut env_listed = false;
        if let Some(value) = env.kubeconfig.as_ref().filter(|v| !v.is_empty()) {
            let listed: Vec<PathBuf> = std::env::split_paths(value)
                .filter(|p| !p.as_os_str().is_empty())
                .collect();
            env_listed = !listed.is_empty();
            // Missing files are ignored, as in client-go; kube-rs `Kubeconfig::from_env` would fail on them.
            let existing: Vec<PathBuf> = listed.iter().filter(|p| p.exists()).cloned().collect();
            searched.extend(listed);
            if !existing.is_empty() {
                return Ok((Some(merge_kubeconfig_files(&existing)?), searched));
            }
        }
        if !env_listed && let Some(home) = &env.home {
            let path = home.join(".kube").join("config");
            if path.exists() {
                return Ok((Some(merge_kubeconfig_files(&[path])?), searched));
            }
            searched.push(path);
        }
        for path in &self.fallback_kubeconfigs {
            if path.exists() {
                tracing::debug!(path = %path.display(), "using the fallback kubeconfig");
                return Ok((
                    Some(merge_kubeconfig_files(std::slice::from_ref(path))?),
                    searched,
                ));
            }
            searched.push(path.clone());
        }
        Ok((None, searched))
    }

    /// Resolves context, cluster, user, namespace and server from this process's environment; no network.
    pub async fn resolve(&self) -> Result<ResolvedConfig, ClientError> {
        self.resolve_with(&KubeconfigEnv::from_process()).await
    }

    /// Resolves and builds the client: `(client, resolved)`.
    pub async fn client(&self) -> Result<(kube::Client, ResolvedConfig), ClientError> {
        let resolved = self.resolve().await?;
        Ok((resolved.client()?, resolved))
    }

    /// [`Self::resolve`] with an explicit environment.
    pub async fn resolve_with(&self, env: &KubeconfigEnv) -> Result<ResolvedConfig, ClientError> {
        if self.as_user.is_none() && (!self.as_group.is_empty() || self.as_uid.is_some()) {
            return Err(ClientError::ImpersonationWithoutUser);
        }
        let (loaded, searched) = self.load_kubeconfig_searched(env)?;
        let (mut kubeconfig, files) = match loaded {
            Some(l) => (l.kubeconfig, l.files),
            None if self.server.is_some() => (Kubeconfig::default(), vec![]),
            None => {
                return Err(ClientError::NoKubeconfig {
                    searched: if searched.is_empty() {
                        "nothing".to_string()
                    } else {
                        display_files(&searched)
                    },
                });
            }
        };
        let files_s = display_files(&files);

        // Context: --context, else current-context; with only --server, a synthetic one.
        let context_name = match self.context.clone().or(kubeconfig.current_context.clone()) {
            Some(name) => name,
            None if self.server.is_some() => {
                let name = "atrest-flags".to_string();
                kubeconfig.contexts.push(NamedContext {
                    name: name.clone(),
                    context: Some(Context {
                        cluster: self.cluster.clone().unwrap_or_else(|| name.clone()),
                        user: self.user.clone(),
                        ..Default::default()
                    }),
                    ..Default::default()
                });
                name
            }
            None => return Err(ClientError::NoCurrentContext { files: files_s }),
        };
        let context = kubeconfig
            .contexts
            .iter()
            .find(|c| c.name == context_name)
            .map(|c| c.context.clone().unwrap_or_default())
            .ok_or_else(|| ClientError::ContextNotFound {
                name: context_name.clone(),
                files: files_s.clone(),
            })?;

        // Cluster: --cluster overrides the context's.
        let cluster_name = self
            .cluster
            .clone()
            .unwrap_or_else(|| context.cluster.clone());
        if !kubeconfig.clusters.iter().any(|c| c.name == cluster_name) {
            if self.server.is_none() {
                return Err(ClientError::ClusterNotFound {
                    name: cluster_name,
                    files: files_s,
                });
            }
            kubeconfig.clusters.push(NamedCluster {
                name: cluster_name.clone(),
                cluster: Some(Cluster::default()),
                ..Default::default()
            });
        }
        let named = kubeconfig
            .clusters
            .iter_mut()
            .find(|c| c.name == cluster_name)
            .expect("cluster present");
        let cluster = named.cluster.get_or_insert_with(Cluster::default);
        if let Some(server) = &self.server {
            cluster.server = Some(server.clone());
        }
        if let Some(ca) = &self.certificate_authority {
            // client-go: a CA file from the flags replaces the kubeconfig's CA data.
            let abs = std::path::absolute(ca).unwrap_or_else(|_| ca.clone());
            cluster.certificate_authority = Some(abs.display().to_string());
            cluster.certificate_authority_data = None;
        }
        if let Some(name) = &self.tls_server_name {
            cluster.tls_server_name = Some(name.clone());
        }
        let cluster = cluster.clone();
        let server = cluster
            .server
            .clone()
            .filter(|s| !s.is_empty())
            .ok_or_else(|| ClientError::NoServer {
                name: cluster_name.clone(),
                files: files_s.clone(),
            })?;
        let certificate_authority_pem = cluster_ca_pem(&cluster_name, &cluster)?;

        // User: --user overrides the context's; an explicit unknown --user is an error.
        let user = self.user.clone().or(context.user.clone());
        if let Some(name) = &self.user
            && !kubeconfig.auth_infos.iter().any(|u| &u.name == name)
        {
            return Err(ClientError::UserNotFound {
                name: name.clone(),
                files: files_s,
            });
        }

        let namespace = self
            .namespace
            .clone()
            .filter(|n| !n.is_empty())
            .or(context.namespace.clone().filter(|n| !n.is_empty()))
            .unwrap_or_else(|| "default".to_string());

        let mut config = kube_config(
            &kubeconfig,
            &cluster_name,
            &cluster,
            &server,
            user.as_deref(),
            &certificate_authority_pem,
            &files_s,
        )?;
        let proxy = proxy::select(
            &config.cluster_url,
            &cluster_name,
            cluster.proxy_url.as_deref(),
            &env.proxy,
        )?;
        if let Some(p) = &proxy {
            tracing::debug!(proxy = %proxy::redacted(&p.url.to_string()), origin = %p.origin, "requests to {server} go through a proxy");
        }
        config.proxy_url = proxy.as_ref().map(|p| p.url.clone());
        config.default_namespace = namespace.clone();
        if let Some(as_user) = &self.as_user {
            config.auth_info.impersonate = Some(as_user.clone());
            config.auth_info.impersonate_groups = if self.as_group.is_empty() {
                None
            } else {
                Some(self.as_group.clone())
            };
            config.auth_info.impersonate_uid = self.as_uid.clone();
        }
        if let RequestTimeout(Some(t)) = self.request_timeout {
            config.read_timeout = Some(t);
            config.write_timeout = Some(config.write_timeout.map_or(t, |w| w.min(t)));
            config.connect_timeout = Some(config.connect_timeout.map_or(t, |c| c.min(t)));
        }

        Ok(ResolvedConfig {
            kubeconfig,
            files,
            context: context_name,
            user,
            namespace,
            cluster: ClusterInfo {
                name: cluster_name,
                server,
                certificate_authority_pem,
                tls_server_name: cluster.tls_server_name.clone(),
                insecure_skip_tls_verify: cluster.insecure_skip_tls_verify.unwrap_or(false),
                proxy_url: cluster.proxy_url.clone().filter(|p| !p.is_empty()),
            },
            proxy,
            config,
        })
    }
}

/// The kube-rs configuration of the selected cluster and user, as kube-rs `Config::from_custom_kubeconfig` builds it
/// (kube-client `config/mod.rs` `new_from_loader`, `config/file_loader.rs` `load_from_kubeconfig`) except for the
/// proxy, which [`proxy::select`] decides: kube-rs would read `HTTPS_PROXY` alone, match `NO_PROXY` against the
/// proxy instead of the server, and refuse `NO_PROXY` lists that Go accepts (empty entries).
fn kube_config(
    kubeconfig: &Kubeconfig,
    cluster_name: &str,
    cluster: &Cluster,
    server: &str,
    user: Option<&str>,
    ca_pem: &Option<Vec<u8>>,
    files: &str,
) -> Result<kube::Config, ClientError> {
    let url: http::Uri =
        server
            .parse()
            .map_err(|e: http::uri::InvalidUri| ClientError::BadServer {
                name: cluster_name.to_string(),
                files: files.to_string(),
                server: server.to_string(),
                message: e.to_string(),
            })?;
    let mut config = kube::Config::new(url);
    // client-go retries a response only when it carries Retry-After (rest/request.go `checkWait`); reencrypt's own
    // RetryPolicy does that. kube-rs's default retry layer would retry every 503 up to 15 times with delays up to
    // 1000 s, so one unavailable aggregated API (503 without Retry-After) would stall discovery for minutes.
    config.default_retry = false;
    // Only when the user's kubeconfig says `insecure-skip-tls-verify: true` for this cluster, as kubectl does.
    config.accept_invalid_certs = cluster.insecure_skip_tls_verify.unwrap_or(false);
    config.disable_compression = cluster.disable_compression.unwrap_or(false);
    config.tls_server_name = cluster.tls_server_name.clone();
    config.root_cert = ca_pem
        .as_deref()
        .map(|pem| pem_certificates(cluster_name, pem))
        .transpose()?;
    // client-go does not fail on a missing user entry (kube-rs issue 1594): anonymous.
    let mut auth_info: AuthInfo = user
        .and_then(|u| kubeconfig.auth_infos.iter().find(|a| a.name == u))
        .and_then(|a| a.auth_info.clone())
        .unwrap_or_default();
    if let Some(exec) = &mut auth_info.exec
        && exec.provide_cluster_info
    {
        exec.cluster =
            Some(
                ExecAuthCluster::try_from(cluster).map_err(|source| ClientError::Config {
                    files: files.to_string(),
                    source,
                })?,
            );
    }
    config.auth_info = auth_info;
    Ok(config)
}

/// The DER bodies of the `CERTIFICATE` blocks of a PEM bundle (kube-client `config::certs`).
fn pem_certificates(cluster: &str, pem: &[u8]) -> Result<Vec<Vec<u8>>, ClientError> {
    const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
    const END: &str = "-----END CERTIFICATE-----";
    let err = |message: String| ClientError::CertificateAuthority {
        cluster: cluster.to_string(),
        message,
    };
    let text = String::from_utf8_lossy(pem);
    let mut out = Vec::new();
    let mut rest = &*text;
    while let Some(start) = rest.find(BEGIN) {
        let body = &rest[start + BEGIN.len()..];
        let end = body
            .find(END)
            .ok_or_else(|| err(format!("certificate {} has no {END} line", out.len() + 1)))?;
        let b64: String = body[..end].chars().filter(|c| !c.is_whitespace()).collect();
        out.push(
            base64::engine::general_purpose::STANDARD
                .decode(b64)
                .map_err(|e| {
                    err(format!(
                        "certificate {} is not valid PEM: {e}",
                        out.len() + 1
                    ))
                })?,
        );
        rest = &body[end + END.len()..];
    }
    if out.is_empty() {
        return Err(err("no PEM CERTIFICATE block".to_string()));
    }
    Ok(out)
}

/// The CA bundle of a cluster entry: `certificate-authority-data` (base64 PEM) or the `certificate-authority` file.
fn cluster_ca_pem(name: &str, cluster: &Cluster) -> Result<Option<Vec<u8>>, ClientError> {
    let err = |message: String| ClientError::CertificateAuthority {
        cluster: name.to_string(),
        message,
    };
    if let Some(data) = cluster
        .certificate_authority_data
        .as_deref()
        .filter(|d| !d.is_empty())
    {
        let compact: String = data.chars().filter(|c| !c.is_whitespace()).collect();
        return base64::engine::general_purpose::STANDARD
            .decode(compact)
            .map(Some)
            .map_err(|e| {
                err(format!(
                    "certificate-authority-data is not valid base64: {e}"
                ))
            });
    }
    if let Some(path) = cluster
        .certificate_authority
        .as_deref()
        .filter(|p| !p.is_empty())
    {
        return std::fs::read(path).map(Some).map_err(|e| {
            err(format!(
                "cannot read certificate-authority file {path}: {e}"
            ))
        });
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser, Debug)]
    struct Cli {
        #[command(flatten)]
        kube: ConfigFlags,
    }

    fn parse(args: &[&str]) -> ConfigFlags {
        Cli::try_parse_from(std::iter::once("kubectl-x").chain(args.iter().copied()))
            .unwrap()
            .kube
    }

    const CA_B64: &str =
        "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCmZha2UKLS0tLS1FTkQgQ0VSVElGSUNBVEUtLS0tLQo=";

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    fn kubeconfig_a() -> String {
        format!(
            r#"apiVersion: v1
kind: Config
current-context: a
clusters:
- name: shared
  cluster:
    server: https://a.example:6443
    certificate-authority-data: {CA_B64}
- name: only-a
  cluster:
    server: https://only-a.example:6443
contexts:
- name: a
  context:
    cluster: shared
    user: alice
    namespace: team-a
- name: nons
  context:
    cluster: only-a
    user: alice
users:
- name: alice
  user:
    token: secret-a
"#
        )
    }

    const KUBECONFIG_B: &str = r#"apiVersion: v1
kind: Config
current-context: b
clusters:
- name: shared
  cluster:
    server: https://b.example:6443
    tls-server-name: from-b
- name: only-b
  cluster:
    server: https://only-b.example:6443
contexts:
- name: b
  context:
    cluster: only-b
    user: bob
users:
- name: bob
  user:
    token: secret-b
"#;

    fn env_list(paths: &[&Path]) -> KubeconfigEnv {
        KubeconfigEnv {
            kubeconfig: Some(std::env::join_paths(paths).unwrap()),
            home: None,
            ..Default::default()
        }
    }

    #[test]
    fn request_timeout_follows_kubectl() {
        assert_eq!(parse_request_timeout("0").unwrap(), RequestTimeout(None));
        assert_eq!(
            parse_request_timeout("5").unwrap(),
            RequestTimeout(Some(Duration::from_secs(5)))
        );
        assert_eq!(
            parse_request_timeout("1m30s").unwrap(),
            RequestTimeout(Some(Duration::from_secs(90)))
        );
        assert_eq!(
            parse_request_timeout("1.5h").unwrap(),
            RequestTimeout(Some(Duration::from_secs(5400)))
        );
        assert_eq!(
            parse_request_timeout("250ms").unwrap(),
            RequestTimeout(Some(Duration::from_millis(250)))
        );
        assert_eq!(
            parse_request_timeout("3us").unwrap(),
            RequestTimeout(Some(Duration::from_micros(3)))
        );
        for bad in ["", "-1", "-1s", "5x", "s", "1..2s", "abc", "1 s"] {
            let err = parse_request_timeout(bad).unwrap_err();
            assert!(err.contains("invalid timeout value"), "{bad}: {err}");
        }
        assert_eq!(parse_positive_timeout("5").unwrap(), Duration::from_secs(5));
        assert_eq!(
            parse_positive_timeout("250ms").unwrap(),
            Duration::from_millis(250)
        );
        for zero in ["0", "0s", "0.0h"] {
            let err = parse_positive_timeout(zero).unwrap_err();
            assert!(err.contains("more than 0"), "{zero}: {err}");
        }
        assert!(parse_positive_timeout("5x").is_err());
    }

    #[test]
    fn flags_parse_like_kubectl() {
        let f = parse(&[
            "--kubeconfig",
            "/k",
            "--context",
            "c",
            "--cluster",
            "cl",
            "--user",
            "u",
            "-n",
            "ns",
            "--as",
            "john",
            "--as-group",
            "g1",
            "--as-group",
            "g2",
            "--as-uid",
            "42",
            "--request-timeout",
            "2m",
            "-s",
            "https://x:6443",
            "--certificate-authority",
            "/ca.crt",
            "--tls-server-name",
            "kubernetes",
        ]);
        assert_eq!(f.kubeconfig.as_deref(), Some(Path::new("/k")));
        assert_eq!(f.context.as_deref(), Some("c"));
        assert_eq!(f.cluster.as_deref(), Some("cl"));
        assert_eq!(f.user.as_deref(), Some("u"));
        assert_eq!(f.namespace.as_deref(), Some("ns"));
        assert_eq!(f.as_user.as_deref(), Some("john"));
        assert_eq!(f.as_group, vec!["g1", "g2"]);
        assert_eq!(f.as_uid.as_deref(), Some("42"));
        assert_eq!(f.request_timeout.0, Some(Duration::from_secs(120)));
        assert_eq!(f.server.as_deref(), Some("https://x:6443"));
        assert_eq!(
            f.certificate_authority.as_deref(),
            Some(Path::new("/ca.crt"))
        );
        assert_eq!(f.tls_server_name.as_deref(), Some("kubernetes"));
        let d = parse(&[]);
        assert_eq!(d.request_timeout, RequestTimeout(None));
        assert!(
            Cli::try_parse_from(["x", "--request-timeout", "soon"])
                .unwrap_err()
                .to_string()
                .contains("invalid timeout value")
        );
    }

    #[tokio::test]
    async fn kubeconfig_env_merges_first_wins_and_skips_missing() {
        let dir = tempfile::tempdir().unwrap();
        let a = write(dir.path(), "a.yaml", &kubeconfig_a());
        let b = write(dir.path(), "b.yaml", KUBECONFIG_B);
        let missing = dir.path().join("missing.yaml");
        let env = env_list(&[&missing, &a, Path::new(""), &b]);
        let r = ConfigFlags::default().resolve_with(&env).await.unwrap();
        // current-context from the first file that sets it; `shared` cluster whole from a (no tls-server-name).
        assert_eq!(r.context, "a");
        assert_eq!(r.files, vec![a.clone(), b.clone()]);
        assert_eq!(r.cluster.name, "shared");
        assert_eq!(r.cluster.server, "https://a.example:6443");
        assert_eq!(r.cluster.tls_server_name, None);
        assert_eq!(
            r.cluster.certificate_authority_pem.as_deref(),
            Some(&b"-----BEGIN CERTIFICATE-----\nfake\n-----END CERTIFICATE-----\n"[..])
        );
        assert_eq!(r.namespace, "team-a");
        assert_eq!(r.user.as_deref(), Some("alice"));
        // Entries only in the second file are still visible.
        let f = ConfigFlags {
            context: Some("b".into()),
            ..Default::default()
        };
        let r = f.resolve_with(&env).await.unwrap();
        assert_eq!(r.cluster.server, "https://only-b.example:6443");
        assert_eq!(r.namespace, "default");
        assert_eq!(r.user.as_deref(), Some("bob"));
        // Order matters: b first wins current-context and the `shared` cluster.
        let env = env_list(&[&b, &a]);
        let f = ConfigFlags {
            cluster: Some("shared".into()),
            ..Default::default()
        };
        let r = f.resolve_with(&env).await.unwrap();
        assert_eq!(r.context, "b");
        assert_eq!(r.cluster.server, "https://b.example:6443");
        assert_eq!(r.cluster.tls_server_name.as_deref(), Some("from-b"));
    }

    #[tokio::test]
    async fn explicit_kubeconfig_ignores_env_and_must_exist() {
        let dir = tempfile::tempdir().unwrap();
        let a = write(dir.path(), "a.yaml", &kubeconfig_a());
        let b = write(dir.path(), "b.yaml", KUBECONFIG_B);
        let env = env_list(&[&a]);
        let f = ConfigFlags {
            kubeconfig: Some(b.clone()),
            ..Default::default()
        };
        let r = f.resolve_with(&env).await.unwrap();
        assert_eq!(r.context, "b");
        assert_eq!(r.files, vec![b]);
        let f = ConfigFlags {
            kubeconfig: Some(dir.path().join("nope")),
            ..Default::default()
        };
        let err = f.resolve_with(&env).await.unwrap_err().to_string();
        assert!(
            err.contains("--kubeconfig") && err.contains("nope"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn home_then_fallback_then_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("home");
        std::fs::create_dir_all(home.join(".kube")).unwrap();
        let admin = write(dir.path(), "admin.conf", KUBECONFIG_B);
        let env = KubeconfigEnv {
            kubeconfig: None,
            home: Some(home.clone()),
            ..Default::default()
        };
        let err = ConfigFlags::default()
            .resolve_with(&env)
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("no kubeconfig found")
                && err.ends_with("set KUBECONFIG or --kubeconfig"),
            "{err}"
        );
        assert!(err.contains(".kube/config"), "{err}");
        let f = ConfigFlags::default().with_fallback(&admin);
        assert_eq!(
            f.resolve_with(&env).await.unwrap().files,
            vec![admin.clone()]
        );
        // ~/.kube/config wins over the fallback.
        let homecfg = write(&home.join(".kube"), "config", &kubeconfig_a());
        assert_eq!(f.resolve_with(&env).await.unwrap().files, vec![homecfg]);
        // A KUBECONFIG listing only missing files hides ~/.kube/config (as kubectl) but not the fallback.
        let env = KubeconfigEnv {
            kubeconfig: Some(dir.path().join("gone").into_os_string()),
            home: Some(home),
            ..Default::default()
        };
        assert_eq!(f.resolve_with(&env).await.unwrap().files, vec![admin]);
    }

    #[tokio::test]
    async fn flags_override_context_cluster_user_and_server() {
        let dir = tempfile::tempdir().unwrap();
        let a = write(dir.path(), "a.yaml", &kubeconfig_a());
        let ca = write(
            dir.path(),
            "ca.crt",
            "-----BEGIN CERTIFICATE-----\nb3RoZXI=\n-----END CERTIFICATE-----\n",
        );
        let env = env_list(&[&a]);
        let f = ConfigFlags {
            namespace: Some("ns-flag".into()),
            server: Some("https://override:6443".into()),
            certificate_authority: Some(ca.clone()),
            tls_server_name: Some("kubernetes".into()),
            as_user: Some("john".into()),
            as_group: vec!["marketing".into()],
            request_timeout: RequestTimeout(Some(Duration::from_secs(7))),
            ..Default::default()
        };
        let r = f.resolve_with(&env).await.unwrap();
        assert_eq!(r.namespace, "ns-flag");
        assert_eq!(r.config.default_namespace, "ns-flag");
        assert_eq!(r.cluster.server, "https://override:6443");
        assert_eq!(r.config.cluster_url.to_string(), "https://override:6443/");
        assert_eq!(
            r.cluster.certificate_authority_pem.as_deref(),
            Some(&b"-----BEGIN CERTIFICATE-----\nb3RoZXI=\n-----END CERTIFICATE-----\n"[..])
        );
        assert_eq!(r.cluster.tls_server_name.as_deref(), Some("kubernetes"));
        assert_eq!(r.config.auth_info.impersonate.as_deref(), Some("john"));
        assert_eq!(
            r.config.auth_info.impersonate_groups,
            Some(vec!["marketing".to_string()])
        );
        assert_eq!(r.config.read_timeout, Some(Duration::from_secs(7)));
        assert!(r.config.connect_timeout.unwrap() <= Duration::from_secs(7));
        // Context without namespace → default.
        let f = ConfigFlags {
            context: Some("nons".into()),
            ..Default::default()
        };
        assert_eq!(f.resolve_with(&env).await.unwrap().namespace, "default");
    }

    #[tokio::test]
    async fn errors_name_what_is_wrong() {
        let dir = tempfile::tempdir().unwrap();
        let a = write(dir.path(), "a.yaml", &kubeconfig_a());
        let env = env_list(&[&a]);
        let err = |f: ConfigFlags| {
            let env = env.clone();
            async move { f.resolve_with(&env).await.unwrap_err().to_string() }
        };
        let e = err(ConfigFlags {
            context: Some("nope".into()),
            ..Default::default()
        })
        .await;
        assert!(
            e.contains("context \"nope\"") && e.contains("a.yaml"),
            "{e}"
        );
        let e = err(ConfigFlags {
            cluster: Some("nope".into()),
            ..Default::default()
        })
        .await;
        assert!(e.contains("cluster \"nope\""), "{e}");
        let e = err(ConfigFlags {
            user: Some("nope".into()),
            ..Default::default()
        })
        .await;
        assert!(e.contains("user \"nope\""), "{e}");
        let e = err(ConfigFlags {
            as_group: vec!["g".into()],
            ..Default::default()
        })
        .await;
        assert!(e.contains("--as USER"), "{e}");
        let bad = write(dir.path(), "bad.yaml", "clusters: [: nope");
        let e = ConfigFlags {
            kubeconfig: Some(bad),
            ..Default::default()
        }
        .resolve_with(&env)
        .await
        .unwrap_err()
        .to_string();
        assert!(e.contains("bad.yaml"), "{e}");
        let nocur = write(dir.path(), "nocur.yaml", "apiVersion: v1\nkind: Config\n");
        let e = ConfigFlags {
            kubeconfig: Some(nocur),
            ..Default::default()
        }
        .resolve_with(&env)
        .await
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("no current-context") && e.contains("--context"),
            "{e}"
        );
    }

    #[tokio::test]
    async fn server_flag_alone_is_enough() {
        let env = KubeconfigEnv::default();
        let f = ConfigFlags {
            server: Some("https://127.0.0.1:6443".into()),
            ..Default::default()
        };
        let r = f.resolve_with(&env).await.unwrap();
        assert_eq!(r.cluster.server, "https://127.0.0.1:6443");
        assert_eq!(r.namespace, "default");
        assert!(r.files.is_empty());
    }

    /// Impersonation and the namespace reach the wire: a real kube::Client against a loopback HTTP listener.
    #[tokio::test]
    async fn impersonation_headers_are_sent() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (mut sock, _) = listener.accept().await.unwrap();
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                let n = sock.read(&mut chunk).await.unwrap();
                assert!(n > 0, "connection closed before the request head");
                buf.extend_from_slice(&chunk[..n]);
            }
            let body = r#"{"major":"1","minor":"33","gitVersion":"v1.33.0","gitCommit":"","gitTreeState":"","buildDate":"","goVersion":"","compiler":"","platform":""}"#;
            let resp = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            sock.write_all(resp.as_bytes()).await.unwrap();
            String::from_utf8(buf).unwrap().to_ascii_lowercase()
        });
        let f = ConfigFlags {
            server: Some(format!("http://{addr}")),
            as_user: Some("john".into()),
            as_group: vec!["marketing".into(), "devs".into()],
            as_uid: Some("u-1".into()),
            ..Default::default()
        };
        let r = f.resolve_with(&KubeconfigEnv::default()).await.unwrap();
        let client = r.client().unwrap();
        let v = client.apiserver_version().await.unwrap();
        assert_eq!(v.minor, "33");
        let head = tokio::time::timeout(Duration::from_secs(10), server)
            .await
            .unwrap()
            .unwrap();
        assert!(head.starts_with("get /version"), "{head}");
        assert!(head.contains("impersonate-user: john\r\n"), "{head}");
        assert!(head.contains("impersonate-group: marketing\r\n"), "{head}");
        assert!(head.contains("impersonate-group: devs\r\n"), "{head}");
        assert!(head.contains("impersonate-uid: u-1\r\n"), "{head}");
    }
}
