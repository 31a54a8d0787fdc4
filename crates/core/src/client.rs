//! The kubectl flag set shared by every plugin (`--kubeconfig`, `--context`, `--as`, ...) and the API client built from it.
