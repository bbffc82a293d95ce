//! Build script of the C ABI crate.
//!
//! 1. On Linux, gives the shared library its SONAME (`libdata_pipeline.so.0.MINOR` while the major
//!    version is 0, where a minor release may break the ABI; `libdata_pipeline.so.MAJOR` after).
//! 2. Writes the C header with the pinned cbindgen (a build-dependency, so the version is fixed by
//!    Cargo.toml and Cargo.lock; nothing to install), but only when asked:
//!    - `DP_WRITE_HEADER=1 cargo build -p data-pipeline-ffi` rewrites `include/data-pipeline.h`;
//!    - `DP_HEADER_OUT=/some/file.h cargo check -p data-pipeline-ffi` writes it elsewhere
//!      (`scripts/check-header.sh` does this and diffs against the committed header).
//!
//!    An ordinary build never touches the source tree.

use std::env;
use std::error::Error;
use std::path::PathBuf;

fn main() -> Result<(), Box<dyn Error>> {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=DP_WRITE_HEADER");
    println!("cargo:rerun-if-env-changed=DP_HEADER_OUT");

    let major = env::var("CARGO_PKG_VERSION_MAJOR")?;
    let minor = env::var("CARGO_PKG_VERSION_MINOR")?;
    let patch = env::var("CARGO_PKG_VERSION_PATCH")?;
    if env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        let soname = if major == "0" {
            format!("libdata_pipeline.so.0.{minor}")
        } else {
            format!("libdata_pipeline.so.{major}")
        };
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,{soname}");
    }

    let crate_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR")?);
    let out = if let Some(path) = env::var_os("DP_HEADER_OUT").filter(|p| !p.is_empty()) {
        PathBuf::from(path)
    } else if env::var("DP_WRITE_HEADER").as_deref() == Ok("1") {
        crate_dir.join("../include/data-pipeline.h")
    } else {
        return Ok(());
    };
    // While writing, the header depends on the sources.
    println!("cargo:rerun-if-changed=src");
    println!("cargo:rerun-if-changed=cbindgen.toml");
    println!("cargo:rerun-if-changed=Cargo.toml");
    // A hand-edited header is regenerated too (cbindgen writes only when the text differs, so this
    // settles after one run).
    println!("cargo:rerun-if-changed={}", out.display());

    let mut config = cbindgen::Config::from_file(crate_dir.join("cbindgen.toml"))?;
    let version_macros = format!(
        "\n/** The version of this header: compare with dp_version() at run time. */\n\
         #define DP_VERSION_MAJOR {major}\n\
         #define DP_VERSION_MINOR {minor}\n\
         #define DP_VERSION_PATCH {patch}\n\
         /** \"MAJOR.MINOR.PATCH\" of this header. */\n\
         #define DP_VERSION_STRING \"{major}.{minor}.{patch}\"\n"
    );
    config.after_includes = Some(version_macros + config.after_includes.as_deref().unwrap_or(""));
    cbindgen::Builder::new()
        .with_crate(&crate_dir)
        .with_config(config)
        .generate()?
        .write_to_file(&out);
    Ok(())
}
