//! One module per backend; `all` lists those compiled into this build.

use crate::Backend;

#[cfg(feature = "dalek2")]
pub mod dalek2;
#[cfg(feature = "dalek3")]
pub mod dalek3;
#[cfg(feature = "ed25519-compact")]
pub mod ed25519_compact;
#[cfg(feature = "p256-013")]
pub mod p256_013;
#[cfg(feature = "p256-014")]
pub mod p256_014;
#[cfg(feature = "ring")]
pub mod ring;
#[cfg(feature = "rsa010")]
pub mod rsa010;
#[cfg(feature = "rsa09")]
pub mod rsa09;

/// The backends compiled into this build.
#[allow(
    unused_mut,
    clippy::vec_init_then_push,
    reason = "which pushes exist depends on the features"
)]
pub fn all() -> Vec<Backend> {
    let mut backends = Vec::new();
    #[cfg(feature = "rsa09")]
    backends.push(Backend {
        name: rsa09::NAME,
        make: rsa09::verifier,
    });
    #[cfg(feature = "rsa010")]
    backends.push(Backend {
        name: rsa010::NAME,
        make: rsa010::verifier,
    });
    #[cfg(feature = "p256-013")]
    backends.push(Backend {
        name: p256_013::NAME,
        make: p256_013::verifier,
    });
    #[cfg(feature = "p256-014")]
    backends.push(Backend {
        name: p256_014::NAME,
        make: p256_014::verifier,
    });
    #[cfg(feature = "dalek2")]
    backends.push(Backend {
        name: dalek2::NAME,
        make: dalek2::verifier,
    });
    #[cfg(feature = "dalek3")]
    backends.push(Backend {
        name: dalek3::NAME,
        make: dalek3::verifier,
    });
    #[cfg(feature = "ed25519-compact")]
    backends.push(Backend {
        name: ed25519_compact::NAME,
        make: ed25519_compact::verifier,
    });
    #[cfg(feature = "ring")]
    backends.push(Backend {
        name: ring::NAME,
        make: ring::verifier,
    });
    backends
}
