// expect: forbidden-class
public class H extends ShardRpcHandler {
  public func GetTransactionSystem() -> Void {}
  public func OnRpc(json: String) -> Void {
    let GameInstance: ref<H> = new H();
    GameInstance.GetTransactionSystem();
  }
}
