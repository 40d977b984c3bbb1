//! The package as a newcomer meets it: the README's quick start, the licence files, the toolchain.

use std::path::Path;

fn read(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn the_quick_start_installs_outofsync_before_the_readme_uses_it() {
    let readme = read("README.md");
    let start = readme.split("## Quick start").nth(1).expect("a quick start");
    let block = start.split("```sh\n").nth(1).and_then(|b| b.split("```").next()).expect("its commands");
    let commands: Vec<&str> =
        block.lines().map(|l| l.split(" #").next().unwrap().trim()).filter(|l| !l.is_empty()).collect();
    assert_eq!(commands, ["cargo run --release -- demo", "cargo test", "cargo install --path ."]);
    // The code blocks are every other piece between fences; the first that runs `outofsync` by
    // name must come after the one that installs it.
    let blocks: Vec<&str> = readme.split("```").skip(1).step_by(2).collect();
    let installs = blocks.iter().position(|b| b.contains("\ncargo install --path .")).unwrap();
    let uses = blocks.iter().position(|b| b.lines().any(|l| l.starts_with("outofsync "))).unwrap();
    assert!(installs < uses, "installed (block {installs}) before it is used (block {uses})");
}

#[test]
fn the_licence_files_the_manifest_names_are_there() {
    assert_eq!(env!("CARGO_PKG_LICENSE"), "MIT OR Apache-2.0");
    let mit = read("LICENSE-MIT");
    assert!(mit.starts_with("MIT License\n\nCopyright (c) the outofsync developers\n"), "{mit}");
    assert!(mit.contains("THE SOFTWARE IS PROVIDED \"AS IS\", WITHOUT WARRANTY OF ANY KIND"));
    let apache = read("LICENSE-APACHE");
    assert!(apache.contains("Apache License\n                        Version 2.0, January 2004"));
    assert!(apache.contains("END OF TERMS AND CONDITIONS") && apache.contains("the outofsync developers"));
}

#[test]
fn the_manifest_declares_the_oldest_rust_that_builds_it() {
    let version = env!("CARGO_PKG_RUST_VERSION");
    let minor: u32 =
        version.strip_prefix("1.").and_then(|m| m.parse().ok()).unwrap_or_else(|| panic!("{version:?}"));
    assert!(minor >= 88, "edition 2024 with let chains needs 1.88, File::try_lock 1.89: {version}");
    assert!(read("README.md").contains(&format!("Rust toolchain ({version} or newer)")));
}

#[test]
fn cargo_run_from_the_root_runs_the_outofsync_command() {
    // The README's first command is `cargo run --release -- demo`: with more than one binary among
    // the workspace's default members (bench/hyper-floor), cargo needs `default-run` to pick one.
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = std::process::Command::new(cargo)
        .args(["metadata", "--no-deps", "--format-version", "1"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo metadata runs");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let metadata: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let defaults: Vec<&str> = metadata["workspace_default_members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m.as_str().unwrap())
        .collect();
    let packages = metadata["packages"].as_array().unwrap();
    let bins: Vec<&str> = packages
        .iter()
        .filter(|p| defaults.contains(&p["id"].as_str().unwrap()))
        .flat_map(|p| p["targets"].as_array().unwrap())
        .filter(|t| t["kind"].as_array().unwrap().iter().any(|k| k == "bin"))
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert!(bins.contains(&"outofsync"), "{bins:?}");
    let root = packages.iter().find(|p| p["name"] == "outofsync-cli").unwrap();
    if bins.len() > 1 {
        assert_eq!(root["default_run"], "outofsync", "binaries of the default members: {bins:?}");
    }
}
