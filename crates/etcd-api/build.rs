//! Generates the gRPC code for etcd's v3 API subset from `proto/` with the protoc binary
//! shipped by `protoc-bin-vendored`, so a fresh machine needs only the Rust toolchain.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    // Safe in a build script: it is single-threaded and the variable is read by the
    // protoc invocation below only.
    std::env::set_var("PROTOC", protoc);
    println!("cargo:rerun-if-changed=proto");
    tonic_prost_build::configure()
        .build_client(false)
        .build_server(true)
        .compile_protos(&["proto/rpc.proto", "proto/kv.proto"], &["proto"])?;
    Ok(())
}
