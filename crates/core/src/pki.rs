//! Keys, certificates and certificate signing requests (OpenSSL).
