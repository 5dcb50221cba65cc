// expect: forbidden-extends
public class Keylogger extends ScriptableSystem {
  private func OnAttach() -> Void {}
}
