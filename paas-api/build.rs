//! Generates the gRPC code from proto/edgemob/v1/paas.proto with a vendored
//! protoc, so a fresh machine needs no system protobuf compiler.
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    // SAFETY: build scripts are single-threaded.
    unsafe { std::env::set_var("PROTOC", protoc) };
    println!("cargo:rerun-if-changed=proto");
    tonic_prost_build::configure()
        // Contexts as `bytes::Bytes`: decoded from the service link's read
        // buffer without a copy, and handed on (to the CTD, to the target's
        // service) by reference.
        .bytes(".edgemob.v1.ExportContextRequest.context")
        .bytes(".edgemob.v1.ContextArrived.context")
        .compile_protos(&["proto/edgemob/v1/paas.proto"], &["proto"])?;
    Ok(())
}
