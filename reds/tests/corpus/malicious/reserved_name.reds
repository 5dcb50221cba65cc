// expect: reserved-name
public func RegisterRpc(name: CName, handler: ref<ShardRpcHandler>) -> Bool {
  return true;
}
