//! S3-compatible object storage for recordings.
//!
//! Audio never passes through the api: clients PUT it straight to storage with a presigned URL
//! that is signed for one content type and one exact length, and workers GET it with a
//! presigned URL. aws-sdk-s3 signs (SigV4) every request; the one request the api sends itself
//! (HEAD on submit) goes out presigned over reqwest, so no second HTTP/TLS stack is linked in.
//! The bucket is created by the deployment (compose's `mc` container, `make up`, the tests).

use std::time::Duration;

use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_s3::presigning::PresigningConfig;

/// Where recordings live.
#[derive(clap::Args, Clone, Debug)]
pub struct S3Config {
    /// S3-compatible endpoint (path-style addressing).
    #[arg(long, env = "S3_ENDPOINT_URL", default_value = "http://127.0.0.1:9100")]
    pub s3_endpoint_url: String,
    #[arg(long, env = "S3_ACCESS_KEY_ID", default_value = "blacklist")]
    pub s3_access_key_id: String,
    #[arg(
        long,
        env = "S3_SECRET_ACCESS_KEY",
        default_value = "blacklist-dev-secret",
        hide_env_values = true
    )]
    pub s3_secret_access_key: common::config::Secret,
    #[arg(long, env = "S3_BUCKET_NAME", default_value = "blacklist-audio")]
    pub s3_bucket_name: String,
    #[arg(long, env = "S3_REGION", default_value = "us-east-1")]
    pub s3_region: String,
}

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// 503: the store did not answer.
    #[error("object storage is unavailable: {0}")]
    Unavailable(String),
    #[error("object storage refused the request: {0}")]
    Refused(String),
}

/// A presigned request for a client.
pub struct Presigned {
    pub url: String,
    pub headers: Vec<(String, String)>,
}

/// What storage knows about an uploaded object.
#[derive(Debug, PartialEq)]
pub struct ObjectInfo {
    pub length: u64,
    pub content_type: Option<String>,
}

#[derive(Clone)]
pub struct Storage {
    s3: aws_sdk_s3::Client,
    bucket: String,
    http: reqwest::Client,
}

impl Storage {
    pub fn new(cfg: &S3Config) -> Storage {
        let creds = Credentials::new(
            cfg.s3_access_key_id.clone(),
            cfg.s3_secret_access_key.expose().to_owned(),
            None,
            None,
            "blacklist-config",
        );
        let conf = aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(cfg.s3_region.clone()))
            .endpoint_url(cfg.s3_endpoint_url.trim_end_matches('/'))
            .credentials_provider(creds)
            .force_path_style(true)
            .build();
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .expect("HTTP client");
        Storage {
            s3: aws_sdk_s3::Client::from_conf(conf),
            bucket: cfg.s3_bucket_name.clone(),
            http,
        }
    }

    fn presigning(ttl: Duration) -> Result<PresigningConfig, StorageError> {
        PresigningConfig::expires_in(ttl).map_err(|e| StorageError::Refused(e.to_string()))
    }

    /// A PUT that only accepts `content_type` and exactly `length` bytes.
    pub async fn presign_put(
        &self,
        key: &str,
        content_type: &str,
        length: u64,
        ttl: Duration,
    ) -> Result<Presigned, StorageError> {
        let req = self
            .s3
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .content_length(length as i64)
            .presigned(Self::presigning(ttl)?)
            .await
            .map_err(|e| StorageError::Refused(e.to_string()))?;
        Ok(Presigned {
            url: req.uri().to_string(),
            headers: req
                .headers()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        })
    }

    /// Sends `body` to a presigned PUT (the api's upload relay).
    /// PUTs `body` (exactly `length` bytes, possibly streamed) to a presigned URL.
    pub async fn put_presigned(
        &self,
        presigned: &Presigned,
        body: impl Into<reqwest::Body>,
        length: u64,
    ) -> Result<u16, StorageError> {
        let mut req = self
            .http
            .put(&presigned.url)
            .timeout(Duration::from_secs(300))
            .header(reqwest::header::CONTENT_LENGTH, length)
            .body(body);
        for (k, v) in &presigned.headers {
            if !k.eq_ignore_ascii_case("content-length") {
                req = req.header(k, v);
            }
        }
        let resp = req
            .send()
            .await
            .map_err(|e| StorageError::Unavailable(e.to_string()))?;
        Ok(resp.status().as_u16())
    }

    /// A GET for workers.
    pub async fn presign_get(&self, key: &str, ttl: Duration) -> Result<String, StorageError> {
        let req = self
            .s3
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .presigned(Self::presigning(ttl)?)
            .await
            .map_err(|e| StorageError::Refused(e.to_string()))?;
        Ok(req.uri().to_string())
    }

    /// The object's size and type, or `None` when nothing was uploaded.
    pub async fn head(&self, key: &str) -> Result<Option<ObjectInfo>, StorageError> {
        let req = self
            .s3
            .head_object()
            .bucket(&self.bucket)
            .key(key)
            .presigned(Self::presigning(Duration::from_secs(60))?)
            .await
            .map_err(|e| StorageError::Refused(e.to_string()))?;
        let resp = self
            .http
            .head(req.uri())
            .send()
            .await
            .map_err(|e| StorageError::Unavailable(e.to_string()))?;
        match resp.status().as_u16() {
            404 => Ok(None),
            200 => {
                let h = resp.headers();
                let length = h
                    .get("content-length")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0);
                let content_type = h
                    .get("content-type")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned);
                Ok(Some(ObjectInfo {
                    length,
                    content_type,
                }))
            }
            s if s >= 500 => Err(StorageError::Unavailable(format!("HEAD answered {s}"))),
            s => Err(StorageError::Refused(format!("HEAD answered {s}"))),
        }
    }

    /// Deletes an object for good; deleting one that is gone already is not an error.
    pub async fn delete(&self, key: &str) -> Result<(), StorageError> {
        let req = self
            .s3
            .delete_object()
            .bucket(&self.bucket)
            .key(key)
            .presigned(Self::presigning(Duration::from_secs(60))?)
            .await
            .map_err(|e| StorageError::Refused(e.to_string()))?;
        let resp = self
            .http
            .delete(req.uri())
            .send()
            .await
            .map_err(|e| StorageError::Unavailable(e.to_string()))?;
        match resp.status().as_u16() {
            200 | 202 | 204 | 404 => Ok(()),
            s if s >= 500 => Err(StorageError::Unavailable(format!("DELETE answered {s}"))),
            s => Err(StorageError::Refused(format!("DELETE answered {s}"))),
        }
    }
}
