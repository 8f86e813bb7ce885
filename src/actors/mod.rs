//! Contest actors (architecture.md): one actor per active contest, a
//! registry that activates and supervises them, and the sweeper that makes
//! timers durable. The rest of the code talks to [`Registry`] only.

pub mod contest;
pub mod registry;
pub mod stats;
pub mod sweeper;

pub use contest::{ActorError, Execute, Reply};
pub use registry::Registry;
