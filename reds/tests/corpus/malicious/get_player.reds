// expect: forbidden-function
public class H extends ShardRpcHandler {
  public func OnRpc(json: String) -> Void {
    let p = GetPlayer(GetGameInstance());
  }
}
