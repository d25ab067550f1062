//! Errors of the report writer.

use std::path::PathBuf;

/// Why a report could not be written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReportError {
    /// A file could not be opened, read, written or renamed.
    #[error("{path}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A Parquet file could not be decoded.
    #[error("{path}")]
    Parquet {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: parquet::errors::ParquetError,
    },
    /// A Parquet file lacks a column the report needs, or has it with another type.
    #[error("{path}: column `{column}`: {problem}")]
    Column {
        /// The file.
        path: PathBuf,
        /// The column.
        column: String,
        /// What is wrong with it.
        problem: String,
    },
    /// A JSON file (run.json, hyper.json) is not valid JSON.
    #[error("{path}")]
    Json {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: serde_json::Error,
    },
    /// The plotting library failed while drawing a figure.
    #[error("drawing the {figure} plot: {message}")]
    Plot {
        /// Which figure.
        figure: &'static str,
        /// The library's message.
        message: String,
    },
}
