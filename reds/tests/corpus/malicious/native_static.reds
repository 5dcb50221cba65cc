// expect: native-decl
public class Evil extends IScriptable {
  public static native func RunCommand(cmd: String) -> Bool;
}
