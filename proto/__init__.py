"""remotegrad.proto: what the SDK, the gateway and the workers share.

- `remotegrad_pb2` / `remotegrad_pb2_grpc`: the generated remotegrad.v1 gRPC contract
  (regenerate with `make proto`).
- `catalog`: the op catalog (signatures, shape and dtype rules, forward, derivative rules).
- `codec`: the one place that converts between protobuf messages and arrays/graphs.
"""
