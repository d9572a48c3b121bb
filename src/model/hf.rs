//! Hugging Face `config.json` import.

use crate::error::{Error, Result};
use crate::model::ModelSpec;
use std::path::Path;

pub fn from_hf_config(path: &Path) -> Result<ModelSpec> {
    Err(Error::Io {
        path: path.to_path_buf(),
        message: "Hugging Face config import is not available yet".into(),
    })
}
