//! The voice pipeline's shared parts, used by the api and the janitor: object storage
//! (presigned uploads and downloads) and publishing a task's analysis job. Knows nothing of HTTP.

pub mod dispatch;
pub mod storage;
