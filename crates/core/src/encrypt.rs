//! Enabling, rotating and disabling encryption at rest on a kubeadm control-plane node (the `kubectl encrypt` verb).
