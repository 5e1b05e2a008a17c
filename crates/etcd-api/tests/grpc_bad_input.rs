//! Bad input on the wire, sent with a raw tonic client: unknown fields are ignored (proto3),
//! a malformed message gets a clear gRPC error, and the server keeps serving.

mod common;

use common::TestServer;
use etcd_api::proto::etcdserverpb::{PutResponse, RangeResponse};
use tonic::codegen::http::uri::PathAndQuery;
use tonic::transport::Channel;
use tonic::Code;
use tonic_prost::ProstCodec;

/// A PutRequest as a newer client could send it: etcd's fields plus one this server does
/// not know.
#[derive(Clone, PartialEq, prost::Message)]
struct PutWithUnknownField {
    #[prost(bytes = "vec", tag = "1")]
    key: Vec<u8>,
    #[prost(bytes = "vec", tag = "2")]
    value: Vec<u8>,
    #[prost(string, tag = "99")]
    from_the_future: String,
}

/// Field 1 (`key`, bytes) sent as a varint, and field 3 (`limit`, int64) as bytes: a wire
/// type mismatch that no protobuf decoder accepts.
#[derive(Clone, PartialEq, prost::Message)]
struct MalformedRange {
    #[prost(uint64, tag = "1")]
    key: u64,
    #[prost(bytes = "vec", tag = "3")]
    limit: Vec<u8>,
}

async fn call<Req, Resp>(
    channel: &Channel,
    path: &'static str,
    req: Req,
) -> Result<Resp, tonic::Status>
where
    Req: prost::Message + Send + Sync + 'static,
    Resp: prost::Message + Default + Send + Sync + 'static,
{
    let mut grpc = tonic::client::Grpc::new(channel.clone());
    grpc.ready().await.expect("channel ready");
    grpc.unary(
        tonic::Request::new(req),
        PathAndQuery::from_static(path),
        ProstCodec::<Req, Resp>::default(),
    )
    .await
    .map(|r| r.into_inner())
}

#[tokio::test]
async fn unknown_fields_are_ignored_and_malformed_messages_rejected() {
    let server = TestServer::start().await;
    let channel = Channel::from_shared(format!("http://{}", server.addr))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let put = PutWithUnknownField {
        key: b"k".to_vec(),
        value: b"v".to_vec(),
        from_the_future: "ignored".into(),
    };
    let r: PutResponse = call(&channel, "/etcdserverpb.KV/Put", put).await.unwrap();
    assert_eq!(r.header.unwrap().revision, 2);

    let bad = MalformedRange {
        key: 7,
        limit: vec![1, 2, 3],
    };
    let e = call::<_, RangeResponse>(&channel, "/etcdserverpb.KV/Range", bad)
        .await
        .unwrap_err();
    assert_ne!(e.code(), Code::Ok);
    assert!(e.message().contains("decode"), "unclear error: {e:?}");

    let e = call::<_, RangeResponse>(
        &channel,
        "/etcdserverpb.Auth/Authenticate",
        PutWithUnknownField::default(),
    )
    .await
    .unwrap_err();
    assert_eq!(
        e.code(),
        Code::Unimplemented,
        "services not served answer Unimplemented"
    );

    let mut c = server.client().await;
    assert_eq!(c.get("k", None).await.unwrap().kvs()[0].value(), b"v");
}
