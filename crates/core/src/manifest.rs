//! kube-apiserver static pod manifests: parsing and format-preserving edits.
