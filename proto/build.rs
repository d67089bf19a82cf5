fn main() -> Result<(), Box<dyn std::error::Error>> {
    // The vendored protoc means a fresh machine needs no system protobuf compiler.
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    // SAFETY: build scripts are single-threaded; nothing else reads the environment here.
    unsafe { std::env::set_var("PROTOC", protoc) };
    println!("cargo:rerun-if-changed=proto/mover.proto");
    println!("cargo:rerun-if-changed=proto/flight_sessions.proto");
    prost_build::compile_protos(
        &["proto/mover.proto", "proto/flight_sessions.proto"],
        &["proto"],
    )?;
    Ok(())
}
