//! The kubeconfig file format: model, loading and writing.
