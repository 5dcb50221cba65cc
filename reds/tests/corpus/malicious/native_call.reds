// expect: forbidden-function
public class H extends ShardRpcHandler {
  public func OnRpc(json: String) -> Void {
    ShardSendChat("spam from a pushed script");
  }
}
