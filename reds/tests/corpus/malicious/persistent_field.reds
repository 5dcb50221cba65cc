// expect: persistent-field
public class Tracker extends IScriptable {
  private persistent let m_secret: String;
}
