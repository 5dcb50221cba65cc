// expect: rpc-name-not-literal
public class H extends ShardRpcHandler {}
public func Init(name: CName) -> Void {
  RegisterRpc(name, new H());
}
