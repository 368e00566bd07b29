//! Where requests go. `kevlar guard` sets it once; `kevlar run` sets it when the app is ready and
//! clears it while the app restarts (requests then get 503 with Retry-After).

use std::sync::RwLock;

use http::uri::Authority;

#[derive(Default)]
pub struct Upstream {
    current: RwLock<Option<Authority>>,
}

impl Upstream {
    pub fn new(initial: Option<Authority>) -> Self {
        Upstream { current: RwLock::new(initial) }
    }

    pub fn get(&self) -> Option<Authority> {
        self.current.read().ok().and_then(|g| g.clone())
    }

    pub fn set(&self, a: Option<Authority>) {
        if let Ok(mut g) = self.current.write() {
            *g = a;
        }
    }
}
