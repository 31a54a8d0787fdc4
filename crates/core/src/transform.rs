//! Value transformers: identity, aescbc, aesgcm, secretbox, kms v1/v2 envelopes, and the provider-ordered prefix set.
