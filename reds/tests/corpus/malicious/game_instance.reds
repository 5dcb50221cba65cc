// expect: forbidden-class
public class H extends ShardRpcHandler {
  public func OnRpc(json: String) -> Void {
    let sys = GameInstance.GetTransactionSystem(GetGameInstance());
  }
}
