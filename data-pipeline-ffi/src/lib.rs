//! The C ABI of data-pipeline. Every exported item is `dp_`-prefixed; see `include/data-pipeline.h`.

#![deny(missing_docs)]
