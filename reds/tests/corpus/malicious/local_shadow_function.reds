// expect: forbidden-function
public class H extends ShardRpcHandler {
  public func OnRpc(json: String) -> Void {
    let GetPlayer = 1;
    GetPlayer(null);
  }
}
