//! `EncryptionConfiguration` (apiserver.config.k8s.io/v1): strict parsing, validation with the kube-apiserver rules, serialization.
