//! Sandbox control plane.
