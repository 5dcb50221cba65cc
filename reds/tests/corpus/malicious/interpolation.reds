// expect: string-interpolation
public class H extends ShardRpcHandler {
  public func OnRpc(json: String) -> Void {
    let w = new inkText();
    w.SetText(s"\(GetPlayer(GetGameInstance()).GetDisplayName())");
  }
}
