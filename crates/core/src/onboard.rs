//! Certificate users: CSR, approval, kubeconfig, RBAC and verification (the `kubectl onboard` verb).
