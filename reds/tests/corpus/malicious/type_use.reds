// expect: forbidden-class
public class H extends ShardRpcHandler {
  private let m_player: wref<PlayerPuppet>;
}
