//! A real etcd (Debian 3.4) started with TLS and client-certificate auth on free loopback ports.
