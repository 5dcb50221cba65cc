// expect: forbidden-method
public class H extends ShardRpcHandler {
  public func OnRpc(json: String) -> Void {
    let w = new inkText();
    w.GetController().QueueEvent(null);
  }
}
