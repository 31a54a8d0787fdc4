//! Storage encodings: the `k8s\0` protobuf envelope (`runtime.Unknown`), JSON storage, and object codecs.
