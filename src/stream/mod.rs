//! Placeholder until the stream-core branch lands.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default)]
pub struct Id {
    pub ms: u64,
    pub seq: u64,
}
#[derive(Default, Clone)]
pub struct Stream {}
impl Stream {
    pub fn new() -> Stream {
        Stream {}
    }
    pub fn len(&self) -> u64 {
        0
    }
    pub fn memory_usage(&self) -> usize {
        0
    }
}
