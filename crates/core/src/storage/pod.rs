//! `v1.Pod` and everything a kubeadm static pod (and its mirror pod status) uses.
//!
//! Field numbers: kubernetes/api `core/v1/generated.proto`; pointer-ness and `omitempty`:
//! kubernetes/api `core/v1/types.go`. Fields are in Go struct order. Rarely used parts of the
//! Pod API (affinity, topology spread, ephemeral containers, resource claims, most volume
//! plugins) are not modelled: a Pod using them is rejected with an error naming the field.

use super::kinds::{LOCAL_OBJECT_REFERENCE, OBJECT_META};
use super::schema::{Message, Ty, b, f, i32f, i64f, m, s, strmap, strs};

/// `v1.Pod`.
pub static POD: Message = Message {
    name: "Pod",
    fields: &[
        m("metadata", 1, &OBJECT_META),
        m("spec", 2, &POD_SPEC),
        m("status", 3, &POD_STATUS),
    ],
};

/// `v1.PodSpec`: `containers` has no `omitempty`.
pub static POD_SPEC: Message = Message {
    name: "PodSpec",
    fields: &[
        m("volumes", 1, &VOLUME).list(),
        m("initContainers", 20, &CONTAINER).list(),
        m("containers", 2, &CONTAINER).list().req(),
        s("restartPolicy", 3),
        i64f("terminationGracePeriodSeconds", 4).ptr(),
        i64f("activeDeadlineSeconds", 5).ptr(),
        s("dnsPolicy", 6),
        strmap("nodeSelector", 7),
        s("serviceAccountName", 8),
        s("serviceAccount", 9),
        b("automountServiceAccountToken", 21).ptr(),
        s("nodeName", 10),
        b("hostNetwork", 11),
        b("hostPID", 12),
        b("hostIPC", 13),
        b("shareProcessNamespace", 27).ptr(),
        m("securityContext", 14, &POD_SECURITY_CONTEXT).ptr(),
        m("imagePullSecrets", 15, &LOCAL_OBJECT_REFERENCE).list(),
        s("hostname", 16),
        s("subdomain", 17),
        s("schedulerName", 19),
        m("tolerations", 22, &TOLERATION).list(),
        m("hostAliases", 23, &HOST_ALIAS).list(),
        s("priorityClassName", 24),
        i32f("priority", 25).ptr(),
        m("dnsConfig", 26, &POD_DNS_CONFIG).ptr(),
        m("readinessGates", 28, &POD_READINESS_GATE).list(),
        s("runtimeClassName", 29).ptr(),
        b("enableServiceLinks", 30).ptr(),
        s("preemptionPolicy", 31).ptr(),
        f("overhead", 32, Ty::Quantity).map(),
        b("setHostnameAsFQDN", 35).ptr(),
        m("os", 36, &POD_OS).ptr(),
        b("hostUsers", 37).ptr(),
        m("schedulingGates", 38, &NAME_ONLY_REQUIRED).list(),
        m("resources", 40, &RESOURCE_REQUIREMENTS).ptr(),
    ],
};

/// `v1.Container`: `name` has no `omitempty`; `resources` is a non-pointer struct (always
/// written, `"resources":{}` when empty).
pub static CONTAINER: Message = Message {
    name: "Container",
    fields: &[
        s("name", 1).req(),
        s("image", 2),
        strs("command", 3),
        strs("args", 4),
        s("workingDir", 5),
        m("ports", 6, &CONTAINER_PORT).list(),
        m("envFrom", 19, &ENV_FROM_SOURCE).list(),
        m("env", 7, &ENV_VAR).list(),
        m("resources", 8, &RESOURCE_REQUIREMENTS),
        m("resizePolicy", 23, &CONTAINER_RESIZE_POLICY).list(),
        s("restartPolicy", 24).ptr(),
        m("volumeMounts", 9, &VOLUME_MOUNT).list(),
        m("volumeDevices", 21, &VOLUME_DEVICE).list(),
        m("livenessProbe", 10, &PROBE).ptr(),
        m("readinessProbe", 11, &PROBE).ptr(),
        m("startupProbe", 22, &PROBE).ptr(),
        m("lifecycle", 12, &LIFECYCLE).ptr(),
        s("terminationMessagePath", 13),
        s("terminationMessagePolicy", 20),
        s("imagePullPolicy", 14),
        m("securityContext", 15, &SECURITY_CONTEXT).ptr(),
        b("stdin", 16),
        b("stdinOnce", 17),
        b("tty", 18),
    ],
};

/// `v1.ContainerPort`.
pub static CONTAINER_PORT: Message = Message {
    name: "ContainerPort",
    fields: &[
        s("name", 1),
        i32f("hostPort", 2),
        i32f("containerPort", 3).req(),
        s("protocol", 4),
        s("hostIP", 5),
    ],
};

/// `v1.EnvFromSource`.
pub static ENV_FROM_SOURCE: Message = Message {
    name: "EnvFromSource",
    fields: &[
        s("prefix", 1),
        m("configMapRef", 2, &REF_OPTIONAL).ptr(),
        m("secretRef", 3, &REF_OPTIONAL).ptr(),
    ],
};

/// `v1.ConfigMapEnvSource` / `v1.SecretEnvSource`: an inline `LocalObjectReference` and
/// `optional`.
pub static REF_OPTIONAL: Message = Message {
    name: "EnvSource",
    fields: &[
        m("localObjectReference", 1, &LOCAL_OBJECT_REFERENCE).inline(),
        b("optional", 2).ptr(),
    ],
};

/// `v1.EnvVar`.
pub static ENV_VAR: Message = Message {
    name: "EnvVar",
    fields: &[
        s("name", 1).req(),
        s("value", 2),
        m("valueFrom", 3, &ENV_VAR_SOURCE).ptr(),
    ],
};

/// `v1.EnvVarSource`.
pub static ENV_VAR_SOURCE: Message = Message {
    name: "EnvVarSource",
    fields: &[
        m("fieldRef", 1, &OBJECT_FIELD_SELECTOR).ptr(),
        m("resourceFieldRef", 2, &RESOURCE_FIELD_SELECTOR).ptr(),
        m("configMapKeyRef", 3, &KEY_SELECTOR).ptr(),
        m("secretKeyRef", 4, &KEY_SELECTOR).ptr(),
    ],
};

/// `v1.ObjectFieldSelector`.
pub static OBJECT_FIELD_SELECTOR: Message = Message {
    name: "ObjectFieldSelector",
    fields: &[s("apiVersion", 1), s("fieldPath", 2).req()],
};

/// `v1.ResourceFieldSelector`: `divisor` is a non-pointer Quantity (`"0"` when unset).
pub static RESOURCE_FIELD_SELECTOR: Message = Message {
    name: "ResourceFieldSelector",
    fields: &[
        s("containerName", 1),
        s("resource", 2).req(),
        f("divisor", 3, Ty::Quantity),
    ],
};

/// `v1.ConfigMapKeySelector` / `v1.SecretKeySelector`.
pub static KEY_SELECTOR: Message = Message {
    name: "KeySelector",
    fields: &[
        m("localObjectReference", 1, &LOCAL_OBJECT_REFERENCE).inline(),
        s("key", 2).req(),
        b("optional", 3).ptr(),
    ],
};

/// `v1.ResourceRequirements`.
pub static RESOURCE_REQUIREMENTS: Message = Message {
    name: "ResourceRequirements",
    fields: &[
        f("limits", 1, Ty::Quantity).map(),
        f("requests", 2, Ty::Quantity).map(),
        m("claims", 3, &RESOURCE_CLAIM).list(),
    ],
};

/// `v1.ResourceClaim` (the container's reference to a pod resource claim).
pub static RESOURCE_CLAIM: Message = Message {
    name: "ResourceClaim",
    fields: &[s("name", 1).req(), s("request", 2)],
};

/// `v1.ContainerResizePolicy`.
pub static CONTAINER_RESIZE_POLICY: Message = Message {
    name: "ContainerResizePolicy",
    fields: &[s("resourceName", 1).req(), s("restartPolicy", 2).req()],
};

/// `v1.VolumeMount`.
pub static VOLUME_MOUNT: Message = Message {
    name: "VolumeMount",
    fields: &[
        s("name", 1).req(),
        b("readOnly", 2),
        s("recursiveReadOnly", 7).ptr(),
        s("mountPath", 3).req(),
        s("subPath", 4),
        s("mountPropagation", 5).ptr(),
        s("subPathExpr", 6),
    ],
};

/// `v1.VolumeDevice`.
pub static VOLUME_DEVICE: Message = Message {
    name: "VolumeDevice",
    fields: &[s("name", 1).req(), s("devicePath", 2).req()],
};

/// `v1.Probe`: `ProbeHandler` is embedded inline (protobuf field 1, `handler`).
pub static PROBE: Message = Message {
    name: "Probe",
    fields: &[
        m("handler", 1, &PROBE_HANDLER).inline(),
        i32f("initialDelaySeconds", 2),
        i32f("timeoutSeconds", 3),
        i32f("periodSeconds", 4),
        i32f("successThreshold", 5),
        i32f("failureThreshold", 6),
        i64f("terminationGracePeriodSeconds", 7).ptr(),
    ],
};

/// `v1.ProbeHandler`.
pub static PROBE_HANDLER: Message = Message {
    name: "ProbeHandler",
    fields: &[
        m("exec", 1, &EXEC_ACTION).ptr(),
        m("httpGet", 2, &HTTP_GET_ACTION).ptr(),
        m("tcpSocket", 3, &TCP_SOCKET_ACTION).ptr(),
        m("grpc", 4, &GRPC_ACTION).ptr(),
    ],
};

/// `v1.ExecAction`.
pub static EXEC_ACTION: Message = Message {
    name: "ExecAction",
    fields: &[strs("command", 1)],
};

/// `v1.HTTPGetAction`: `port` is a non-pointer IntOrString without `omitempty`.
pub static HTTP_GET_ACTION: Message = Message {
    name: "HTTPGetAction",
    fields: &[
        s("path", 1),
        f("port", 2, Ty::IntOrString).req(),
        s("host", 3),
        s("scheme", 4),
        m("httpHeaders", 5, &HTTP_HEADER).list(),
    ],
};

/// `v1.HTTPHeader`.
pub static HTTP_HEADER: Message = Message {
    name: "HTTPHeader",
    fields: &[s("name", 1).req(), s("value", 2).req()],
};

/// `v1.TCPSocketAction`.
pub static TCP_SOCKET_ACTION: Message = Message {
    name: "TCPSocketAction",
    fields: &[f("port", 1, Ty::IntOrString).req(), s("host", 2)],
};

/// `v1.GRPCAction`: `service` is a `*string` without `omitempty`.
pub static GRPC_ACTION: Message = Message {
    name: "GRPCAction",
    fields: &[i32f("port", 1).req(), s("service", 2).ptr().req()],
};

/// `v1.Lifecycle`.
pub static LIFECYCLE: Message = Message {
    name: "Lifecycle",
    fields: &[
        m("postStart", 1, &LIFECYCLE_HANDLER).ptr(),
        m("preStop", 2, &LIFECYCLE_HANDLER).ptr(),
        s("stopSignal", 3).ptr(),
    ],
};

/// `v1.LifecycleHandler`.
pub static LIFECYCLE_HANDLER: Message = Message {
    name: "LifecycleHandler",
    fields: &[
        m("exec", 1, &EXEC_ACTION).ptr(),
        m("httpGet", 2, &HTTP_GET_ACTION).ptr(),
        m("tcpSocket", 3, &TCP_SOCKET_ACTION).ptr(),
        m("sleep", 4, &SLEEP_ACTION).ptr(),
    ],
};

/// `v1.SleepAction`.
pub static SLEEP_ACTION: Message = Message {
    name: "SleepAction",
    fields: &[i64f("seconds", 1).req()],
};

/// `v1.SecurityContext` (container): every field a pointer.
pub static SECURITY_CONTEXT: Message = Message {
    name: "SecurityContext",
    fields: &[
        m("capabilities", 1, &CAPABILITIES).ptr(),
        b("privileged", 2).ptr(),
        m("seLinuxOptions", 3, &SE_LINUX_OPTIONS).ptr(),
        m("windowsOptions", 10, &WINDOWS_OPTIONS).ptr(),
        i64f("runAsUser", 4).ptr(),
        i64f("runAsGroup", 8).ptr(),
        b("runAsNonRoot", 5).ptr(),
        b("readOnlyRootFilesystem", 6).ptr(),
        b("allowPrivilegeEscalation", 7).ptr(),
        s("procMount", 9).ptr(),
        m("seccompProfile", 11, &SECCOMP_PROFILE).ptr(),
        m("appArmorProfile", 12, &SECCOMP_PROFILE).ptr(),
    ],
};

/// `v1.Capabilities`.
pub static CAPABILITIES: Message = Message {
    name: "Capabilities",
    fields: &[strs("add", 1), strs("drop", 2)],
};

/// `v1.SELinuxOptions`.
pub static SE_LINUX_OPTIONS: Message = Message {
    name: "SELinuxOptions",
    fields: &[s("user", 1), s("role", 2), s("type", 3), s("level", 4)],
};

/// `v1.WindowsSecurityContextOptions`.
pub static WINDOWS_OPTIONS: Message = Message {
    name: "WindowsSecurityContextOptions",
    fields: &[
        s("gmsaCredentialSpecName", 1).ptr(),
        s("gmsaCredentialSpec", 2).ptr(),
        s("runAsUserName", 3).ptr(),
        b("hostProcess", 4).ptr(),
    ],
};

/// `v1.SeccompProfile` and `v1.AppArmorProfile` (same shape: `type`, `*localhostProfile`).
pub static SECCOMP_PROFILE: Message = Message {
    name: "SeccompProfile",
    fields: &[s("type", 1).req(), s("localhostProfile", 2).ptr()],
};

/// `v1.PodSecurityContext`.
pub static POD_SECURITY_CONTEXT: Message = Message {
    name: "PodSecurityContext",
    fields: &[
        m("seLinuxOptions", 1, &SE_LINUX_OPTIONS).ptr(),
        m("windowsOptions", 8, &WINDOWS_OPTIONS).ptr(),
        i64f("runAsUser", 2).ptr(),
        i64f("runAsGroup", 6).ptr(),
        b("runAsNonRoot", 3).ptr(),
        i64f("supplementalGroups", 4).list(),
        s("supplementalGroupsPolicy", 12).ptr(),
        i64f("fsGroup", 5).ptr(),
        m("sysctls", 7, &SYSCTL).list(),
        s("fsGroupChangePolicy", 9).ptr(),
        m("seccompProfile", 10, &SECCOMP_PROFILE).ptr(),
        m("appArmorProfile", 11, &SECCOMP_PROFILE).ptr(),
        s("seLinuxChangePolicy", 13).ptr(),
    ],
};

/// `v1.Sysctl`.
pub static SYSCTL: Message = Message {
    name: "Sysctl",
    fields: &[s("name", 1).req(), s("value", 2).req()],
};

/// `v1.Toleration`.
pub static TOLERATION: Message = Message {
    name: "Toleration",
    fields: &[
        s("key", 1),
        s("operator", 2),
        s("value", 3),
        s("effect", 4),
        i64f("tolerationSeconds", 5).ptr(),
    ],
};

/// `v1.HostAlias`.
pub static HOST_ALIAS: Message = Message {
    name: "HostAlias",
    fields: &[s("ip", 1).req(), strs("hostnames", 2)],
};

/// `v1.PodDNSConfig`.
pub static POD_DNS_CONFIG: Message = Message {
    name: "PodDNSConfig",
    fields: &[
        strs("nameservers", 1),
        strs("searches", 2),
        m("options", 3, &POD_DNS_CONFIG_OPTION).list(),
    ],
};

/// `v1.PodDNSConfigOption`.
pub static POD_DNS_CONFIG_OPTION: Message = Message {
    name: "PodDNSConfigOption",
    fields: &[s("name", 1), s("value", 2).ptr()],
};

/// `v1.PodReadinessGate`.
pub static POD_READINESS_GATE: Message = Message {
    name: "PodReadinessGate",
    fields: &[s("conditionType", 1).req()],
};

/// `v1.PodOS`, `v1.PodSchedulingGate`: a required `name`.
pub static POD_OS: Message = Message {
    name: "PodOS",
    fields: &[s("name", 1).req()],
};

/// `v1.PodSchedulingGate`.
pub static NAME_ONLY_REQUIRED: Message = Message {
    name: "PodSchedulingGate",
    fields: &[s("name", 1).req()],
};

/// `v1.Volume`: `VolumeSource` is embedded inline (protobuf field 2, `volumeSource`).
pub static VOLUME: Message = Message {
    name: "Volume",
    fields: &[
        s("name", 1).req(),
        m("volumeSource", 2, &VOLUME_SOURCE).inline(),
    ],
};

/// `v1.VolumeSource` (the plugins kubeadm and ordinary pods use).
pub static VOLUME_SOURCE: Message = Message {
    name: "VolumeSource",
    fields: &[
        m("hostPath", 1, &HOST_PATH_VOLUME_SOURCE).ptr(),
        m("emptyDir", 2, &EMPTY_DIR_VOLUME_SOURCE).ptr(),
        m("secret", 6, &SECRET_VOLUME_SOURCE).ptr(),
        m("persistentVolumeClaim", 10, &PVC_VOLUME_SOURCE).ptr(),
        m("downwardAPI", 16, &DOWNWARD_API_VOLUME_SOURCE).ptr(),
        m("configMap", 19, &CONFIG_MAP_VOLUME_SOURCE).ptr(),
        m("projected", 26, &PROJECTED_VOLUME_SOURCE).ptr(),
    ],
};

/// `v1.HostPathVolumeSource`: `type` is a `*HostPathType`.
pub static HOST_PATH_VOLUME_SOURCE: Message = Message {
    name: "HostPathVolumeSource",
    fields: &[s("path", 1).req(), s("type", 2).ptr()],
};

/// `v1.EmptyDirVolumeSource`.
pub static EMPTY_DIR_VOLUME_SOURCE: Message = Message {
    name: "EmptyDirVolumeSource",
    fields: &[s("medium", 1), f("sizeLimit", 2, Ty::Quantity).ptr()],
};

/// `v1.SecretVolumeSource`.
pub static SECRET_VOLUME_SOURCE: Message = Message {
    name: "SecretVolumeSource",
    fields: &[
        s("secretName", 1),
        m("items", 2, &KEY_TO_PATH).list(),
        i32f("defaultMode", 3).ptr(),
        b("optional", 4).ptr(),
    ],
};

/// `v1.ConfigMapVolumeSource`.
pub static CONFIG_MAP_VOLUME_SOURCE: Message = Message {
    name: "ConfigMapVolumeSource",
    fields: &[
        m("localObjectReference", 1, &LOCAL_OBJECT_REFERENCE).inline(),
        m("items", 2, &KEY_TO_PATH).list(),
        i32f("defaultMode", 3).ptr(),
        b("optional", 4).ptr(),
    ],
};

/// `v1.PersistentVolumeClaimVolumeSource`.
pub static PVC_VOLUME_SOURCE: Message = Message {
    name: "PersistentVolumeClaimVolumeSource",
    fields: &[s("claimName", 1).req(), b("readOnly", 2)],
};

/// `v1.KeyToPath`.
pub static KEY_TO_PATH: Message = Message {
    name: "KeyToPath",
    fields: &[s("key", 1).req(), s("path", 2).req(), i32f("mode", 3).ptr()],
};

/// `v1.DownwardAPIVolumeSource`.
pub static DOWNWARD_API_VOLUME_SOURCE: Message = Message {
    name: "DownwardAPIVolumeSource",
    fields: &[
        m("items", 1, &DOWNWARD_API_VOLUME_FILE).list(),
        i32f("defaultMode", 2).ptr(),
    ],
};

/// `v1.DownwardAPIVolumeFile`.
pub static DOWNWARD_API_VOLUME_FILE: Message = Message {
    name: "DownwardAPIVolumeFile",
    fields: &[
        s("path", 1).req(),
        m("fieldRef", 2, &OBJECT_FIELD_SELECTOR).ptr(),
        m("resourceFieldRef", 3, &RESOURCE_FIELD_SELECTOR).ptr(),
        i32f("mode", 4).ptr(),
    ],
};

/// `v1.ProjectedVolumeSource`: `sources` has no `omitempty`.
pub static PROJECTED_VOLUME_SOURCE: Message = Message {
    name: "ProjectedVolumeSource",
    fields: &[
        m("sources", 1, &VOLUME_PROJECTION).list().req(),
        i32f("defaultMode", 2).ptr(),
    ],
};

/// `v1.VolumeProjection`.
pub static VOLUME_PROJECTION: Message = Message {
    name: "VolumeProjection",
    fields: &[
        m("secret", 1, &OBJECT_PROJECTION).ptr(),
        m("downwardAPI", 2, &DOWNWARD_API_PROJECTION).ptr(),
        m("configMap", 3, &OBJECT_PROJECTION).ptr(),
        m("serviceAccountToken", 4, &SERVICE_ACCOUNT_TOKEN_PROJECTION).ptr(),
    ],
};

/// `v1.SecretProjection` / `v1.ConfigMapProjection` (protobuf field 3 unused).
pub static OBJECT_PROJECTION: Message = Message {
    name: "Projection",
    fields: &[
        m("localObjectReference", 1, &LOCAL_OBJECT_REFERENCE).inline(),
        m("items", 2, &KEY_TO_PATH).list(),
        b("optional", 4).ptr(),
    ],
};

/// `v1.DownwardAPIProjection`.
pub static DOWNWARD_API_PROJECTION: Message = Message {
    name: "DownwardAPIProjection",
    fields: &[m("items", 1, &DOWNWARD_API_VOLUME_FILE).list()],
};

/// `v1.ServiceAccountTokenProjection`.
pub static SERVICE_ACCOUNT_TOKEN_PROJECTION: Message = Message {
    name: "ServiceAccountTokenProjection",
    fields: &[
        s("audience", 1),
        i64f("expirationSeconds", 2).ptr(),
        s("path", 3).req(),
    ],
};

/// `v1.PodStatus`.
pub static POD_STATUS: Message = Message {
    name: "PodStatus",
    fields: &[
        i64f("observedGeneration", 17),
        s("phase", 1),
        m("conditions", 2, &POD_CONDITION).list(),
        s("message", 3),
        s("reason", 4),
        s("nominatedNodeName", 11),
        s("hostIP", 5),
        m("hostIPs", 16, &IP_ONLY).list(),
        s("podIP", 6),
        m("podIPs", 12, &IP_ONLY).list(),
        f("startTime", 7, Ty::Time).ptr(),
        m("initContainerStatuses", 10, &CONTAINER_STATUS).list(),
        m("containerStatuses", 8, &CONTAINER_STATUS).list(),
        s("qosClass", 9),
        m("ephemeralContainerStatuses", 13, &CONTAINER_STATUS).list(),
        s("resize", 14),
    ],
};

/// `v1.HostIP` / `v1.PodIP`.
pub static IP_ONLY: Message = Message {
    name: "PodIP",
    fields: &[s("ip", 1).req()],
};

/// `v1.PodCondition`: `lastProbeTime`/`lastTransitionTime` are non-pointer Times.
pub static POD_CONDITION: Message = Message {
    name: "PodCondition",
    fields: &[
        s("type", 1).req(),
        i64f("observedGeneration", 7),
        s("status", 2).req(),
        f("lastProbeTime", 3, Ty::Time),
        f("lastTransitionTime", 4, Ty::Time),
        s("reason", 5),
        s("message", 6),
    ],
};

/// `v1.ContainerStatus`: `state`/`lastState` are non-pointer structs (always written).
pub static CONTAINER_STATUS: Message = Message {
    name: "ContainerStatus",
    fields: &[
        s("name", 1).req(),
        m("state", 2, &CONTAINER_STATE),
        m("lastState", 3, &CONTAINER_STATE),
        b("ready", 4).req(),
        i32f("restartCount", 5).req(),
        s("image", 6).req(),
        s("imageID", 7).req(),
        s("containerID", 8),
        b("started", 9).ptr(),
        f("allocatedResources", 10, Ty::Quantity).map(),
        m("resources", 11, &RESOURCE_REQUIREMENTS).ptr(),
        m("volumeMounts", 12, &VOLUME_MOUNT_STATUS).list(),
        s("stopSignal", 15).ptr(),
    ],
};

/// `v1.VolumeMountStatus`.
pub static VOLUME_MOUNT_STATUS: Message = Message {
    name: "VolumeMountStatus",
    fields: &[
        s("name", 1).req(),
        s("mountPath", 2).req(),
        b("readOnly", 3),
        s("recursiveReadOnly", 4).ptr(),
    ],
};

/// `v1.ContainerState`.
pub static CONTAINER_STATE: Message = Message {
    name: "ContainerState",
    fields: &[
        m("waiting", 1, &CONTAINER_STATE_WAITING).ptr(),
        m("running", 2, &CONTAINER_STATE_RUNNING).ptr(),
        m("terminated", 3, &CONTAINER_STATE_TERMINATED).ptr(),
    ],
};

/// `v1.ContainerStateWaiting`.
pub static CONTAINER_STATE_WAITING: Message = Message {
    name: "ContainerStateWaiting",
    fields: &[s("reason", 1), s("message", 2)],
};

/// `v1.ContainerStateRunning`.
pub static CONTAINER_STATE_RUNNING: Message = Message {
    name: "ContainerStateRunning",
    fields: &[f("startedAt", 1, Ty::Time)],
};

/// `v1.ContainerStateTerminated`.
pub static CONTAINER_STATE_TERMINATED: Message = Message {
    name: "ContainerStateTerminated",
    fields: &[
        i32f("exitCode", 1).req(),
        i32f("signal", 2),
        s("reason", 3),
        s("message", 4),
        f("startedAt", 5, Ty::Time),
        f("finishedAt", 6, Ty::Time),
        s("containerID", 7),
    ],
};
