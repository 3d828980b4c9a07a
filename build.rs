//! Embeds web templates, email templates and static files in the binary, so
//! `broadsheet serve` works from any directory. Each folder becomes a
//! `&[(relative_path, contents)]` table in `$OUT_DIR/<folder>.rs`.

use std::{env, fs, io, path::Path};

fn main() -> io::Result<()> {
    let out_dir = env::var("OUT_DIR").expect("cargo sets OUT_DIR");
    // sqlx::migrate! reads them at compile time but cannot tell cargo so.
    println!("cargo:rerun-if-changed=migrations");
    postgres_tests();
    for folder in ["templates", "email_templates", "static"] {
        println!("cargo:rerun-if-changed={folder}");
        let mut files = Vec::new();
        collect(Path::new(folder), Path::new(folder), &mut files)?;
        files.sort();
        let mut table = String::from("&[\n");
        for relative in &files {
            let absolute = Path::new(&env::var("CARGO_MANIFEST_DIR").expect("cargo sets it"))
                .join(folder)
                .join(relative);
            table.push_str(&format!(
                "    ({relative:?}, include_str!({:?})),\n",
                absolute.display().to_string()
            ));
        }
        table.push(']');
        fs::write(Path::new(&out_dir).join(format!("{folder}.rs")), table)?;
    }
    Ok(())
}

/// The PostgreSQL variant of each storage test is compiled as ignored
/// unless `BROADSHEET_TEST_POSTGRES_URL` is set, so a run without it says
/// "ignored" for each instead of a passing `ok` (tests/support/mod.rs).
fn postgres_tests() {
    println!("cargo::rustc-check-cfg=cfg(postgres_tests)");
    println!("cargo:rerun-if-env-changed=BROADSHEET_TEST_POSTGRES_URL");
    if env::var_os("BROADSHEET_TEST_POSTGRES_URL").is_some() {
        println!("cargo:rustc-cfg=postgres_tests");
    }
}

fn collect(root: &Path, dir: &Path, files: &mut Vec<String>) -> io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            collect(root, &path, files)?;
        } else {
            let relative = path.strip_prefix(root).expect("path under root");
            files.push(relative.to_string_lossy().replace('\\', "/"));
        }
    }
    Ok(())
}
