// dialect: both
// Flat chains longer than any nesting limit: 300 `+` terms, 200 `else if`
// arms, 150 method links and 150 field links.
public class Node {
  public let m_next: ref<Node>;

  public func Next() -> ref<Node> {
    return this.m_next;
  }
}

public func Terms(a0: Int32, a1: Int32, a2: Int32, a3: Int32, a4: Int32, a5: Int32, a6: Int32) -> Int32 {
  return a0 + a1 + a2 + a3 + a4 + a5 + a6 + a0 + a1 + a2 + a3 + a4 + a5 + a6 + a0 + a1 + a2 + a3 + a4 + a5 + a6 + a0 + a1 + a2 + a3 + a4 + a5 + a6 + a0 + a1 + a2 + a3 + a4 + a5 + a6 + a0 + a1 + a2 + a3 + a4 + a5 + a6 + a0 + a1 + a2 + a3 + a4 + a5 + a6 + a0 + a1 + a2 + a3 + a4 + a5 + a6 + a0 + a1 + a2 + a3 + a4 + a5 + a6 + a0 + a1 + a2 + a3 + a4 + a5 + a6 + a0 + a1 + a2 + a3 + a4 + a5 + a6 + a0 + a1 + a2 + a3 + a4 + a5 + a6 + a0 + a1 + a2 + a3 + a4 + a5 + a6 + a0 + a1 + a2 + a3 + a4 + a5 + a6 + a0 + a1 + a2 + a3 + a4 + a5 + a6 + a0 + a1 + a2 + a3 + a4 + a5 + a6 + a0 + a1 + a2 + a3 + a4 + a5 + a6 + a0 + a1 + a2 + a3 + a4 + a5 + a6 + a0 + a1 + a2 + a3 + a4 + a5 + a6 + a0 + a1 + a2 + a3 + a4 + a5 + a6 + a0 + a1 + a2 + a3 + a4 + a5 + a6 + a0 + a1 + a2 + a3 + a4 + a5 + a6 + a0 + a1 + a2 + a3 + a4 + a5 + a6 + a0 + a1 + a2 + a3 + a4 + a5 + a6 + a0 + a1 + a2 + a3 + a4 + a5 + a6 + a0 + a1 + a2 + a3 + a4 + a5 + a6 + a0 + a1 + a2 + a3 + a4 + a5 + a6 + a0 + a1 + a2 + a3 + a4 + a5 + a6 + a0 + a1 + a2 + a3 + a4 + a5 + a6 + a0 + a1 + a2 + a3 + a4 + a5 + a6 + a0 + a1 + a2 + a3 + a4 + a5 + a6 + a0 + a1 + a2 + a3 + a4 + a5 + a6 + a0 + a1 + a2 + a3 + a4 + a5 + a6 + a0 + a1 + a2 + a3 + a4 + a5 + a6 + a0 + a1 + a2 + a3 + a4 + a5 + a6 + a0 + a1 + a2 + a3 + a4 + a5 + a6 + a0 + a1 + a2 + a3 + a4 + a5 + a6 + a0 + a1 + a2 + a3 + a4 + a5 + a6 + a0 + a1 + a2 + a3 + a4 + a5 + a6 + a0 + a1 + a2 + a3 + a4 + a5 + a6 + a0 + a1 + a2 + a3 + a4 + a5 + a6 + a0 + a1 + a2 + a3 + a4 + a5 + a6 + a0 + a1 + a2 + a3 + a4 + a5;
}

public func Arms(x: Int32) -> Int32 {
  let y = 0;
  if x == 0 {
    y = 0;
  } else if x == 1 {
    y = 1;
  } else if x == 2 {
    y = 2;
  } else if x == 3 {
    y = 3;
  } else if x == 4 {
    y = 4;
  } else if x == 5 {
    y = 5;
  } else if x == 6 {
    y = 6;
  } else if x == 7 {
    y = 7;
  } else if x == 8 {
    y = 8;
  } else if x == 9 {
    y = 9;
  } else if x == 10 {
    y = 10;
  } else if x == 11 {
    y = 11;
  } else if x == 12 {
    y = 12;
  } else if x == 13 {
    y = 13;
  } else if x == 14 {
    y = 14;
  } else if x == 15 {
    y = 15;
  } else if x == 16 {
    y = 16;
  } else if x == 17 {
    y = 17;
  } else if x == 18 {
    y = 18;
  } else if x == 19 {
    y = 19;
  } else if x == 20 {
    y = 20;
  } else if x == 21 {
    y = 21;
  } else if x == 22 {
    y = 22;
  } else if x == 23 {
    y = 23;
  } else if x == 24 {
    y = 24;
  } else if x == 25 {
    y = 25;
  } else if x == 26 {
    y = 26;
  } else if x == 27 {
    y = 27;
  } else if x == 28 {
    y = 28;
  } else if x == 29 {
    y = 29;
  } else if x == 30 {
    y = 30;
  } else if x == 31 {
    y = 31;
  } else if x == 32 {
    y = 32;
  } else if x == 33 {
    y = 33;
  } else if x == 34 {
    y = 34;
  } else if x == 35 {
    y = 35;
  } else if x == 36 {
    y = 36;
  } else if x == 37 {
    y = 37;
  } else if x == 38 {
    y = 38;
  } else if x == 39 {
    y = 39;
  } else if x == 40 {
    y = 40;
  } else if x == 41 {
    y = 41;
  } else if x == 42 {
    y = 42;
  } else if x == 43 {
    y = 43;
  } else if x == 44 {
    y = 44;
  } else if x == 45 {
    y = 45;
  } else if x == 46 {
    y = 46;
  } else if x == 47 {
    y = 47;
  } else if x == 48 {
    y = 48;
  } else if x == 49 {
    y = 49;
  } else if x == 50 {
    y = 50;
  } else if x == 51 {
    y = 51;
  } else if x == 52 {
    y = 52;
  } else if x == 53 {
    y = 53;
  } else if x == 54 {
    y = 54;
  } else if x == 55 {
    y = 55;
  } else if x == 56 {
    y = 56;
  } else if x == 57 {
    y = 57;
  } else if x == 58 {
    y = 58;
  } else if x == 59 {
    y = 59;
  } else if x == 60 {
    y = 60;
  } else if x == 61 {
    y = 61;
  } else if x == 62 {
    y = 62;
  } else if x == 63 {
    y = 63;
  } else if x == 64 {
    y = 64;
  } else if x == 65 {
    y = 65;
  } else if x == 66 {
    y = 66;
  } else if x == 67 {
    y = 67;
  } else if x == 68 {
    y = 68;
  } else if x == 69 {
    y = 69;
  } else if x == 70 {
    y = 70;
  } else if x == 71 {
    y = 71;
  } else if x == 72 {
    y = 72;
  } else if x == 73 {
    y = 73;
  } else if x == 74 {
    y = 74;
  } else if x == 75 {
    y = 75;
  } else if x == 76 {
    y = 76;
  } else if x == 77 {
    y = 77;
  } else if x == 78 {
    y = 78;
  } else if x == 79 {
    y = 79;
  } else if x == 80 {
    y = 80;
  } else if x == 81 {
    y = 81;
  } else if x == 82 {
    y = 82;
  } else if x == 83 {
    y = 83;
  } else if x == 84 {
    y = 84;
  } else if x == 85 {
    y = 85;
  } else if x == 86 {
    y = 86;
  } else if x == 87 {
    y = 87;
  } else if x == 88 {
    y = 88;
  } else if x == 89 {
    y = 89;
  } else if x == 90 {
    y = 90;
  } else if x == 91 {
    y = 91;
  } else if x == 92 {
    y = 92;
  } else if x == 93 {
    y = 93;
  } else if x == 94 {
    y = 94;
  } else if x == 95 {
    y = 95;
  } else if x == 96 {
    y = 96;
  } else if x == 97 {
    y = 97;
  } else if x == 98 {
    y = 98;
  } else if x == 99 {
    y = 99;
  } else if x == 100 {
    y = 100;
  } else if x == 101 {
    y = 101;
  } else if x == 102 {
    y = 102;
  } else if x == 103 {
    y = 103;
  } else if x == 104 {
    y = 104;
  } else if x == 105 {
    y = 105;
  } else if x == 106 {
    y = 106;
  } else if x == 107 {
    y = 107;
  } else if x == 108 {
    y = 108;
  } else if x == 109 {
    y = 109;
  } else if x == 110 {
    y = 110;
  } else if x == 111 {
    y = 111;
  } else if x == 112 {
    y = 112;
  } else if x == 113 {
    y = 113;
  } else if x == 114 {
    y = 114;
  } else if x == 115 {
    y = 115;
  } else if x == 116 {
    y = 116;
  } else if x == 117 {
    y = 117;
  } else if x == 118 {
    y = 118;
  } else if x == 119 {
    y = 119;
  } else if x == 120 {
    y = 120;
  } else if x == 121 {
    y = 121;
  } else if x == 122 {
    y = 122;
  } else if x == 123 {
    y = 123;
  } else if x == 124 {
    y = 124;
  } else if x == 125 {
    y = 125;
  } else if x == 126 {
    y = 126;
  } else if x == 127 {
    y = 127;
  } else if x == 128 {
    y = 128;
  } else if x == 129 {
    y = 129;
  } else if x == 130 {
    y = 130;
  } else if x == 131 {
    y = 131;
  } else if x == 132 {
    y = 132;
  } else if x == 133 {
    y = 133;
  } else if x == 134 {
    y = 134;
  } else if x == 135 {
    y = 135;
  } else if x == 136 {
    y = 136;
  } else if x == 137 {
    y = 137;
  } else if x == 138 {
    y = 138;
  } else if x == 139 {
    y = 139;
  } else if x == 140 {
    y = 140;
  } else if x == 141 {
    y = 141;
  } else if x == 142 {
    y = 142;
  } else if x == 143 {
    y = 143;
  } else if x == 144 {
    y = 144;
  } else if x == 145 {
    y = 145;
  } else if x == 146 {
    y = 146;
  } else if x == 147 {
    y = 147;
  } else if x == 148 {
    y = 148;
  } else if x == 149 {
    y = 149;
  } else if x == 150 {
    y = 150;
  } else if x == 151 {
    y = 151;
  } else if x == 152 {
    y = 152;
  } else if x == 153 {
    y = 153;
  } else if x == 154 {
    y = 154;
  } else if x == 155 {
    y = 155;
  } else if x == 156 {
    y = 156;
  } else if x == 157 {
    y = 157;
  } else if x == 158 {
    y = 158;
  } else if x == 159 {
    y = 159;
  } else if x == 160 {
    y = 160;
  } else if x == 161 {
    y = 161;
  } else if x == 162 {
    y = 162;
  } else if x == 163 {
    y = 163;
  } else if x == 164 {
    y = 164;
  } else if x == 165 {
    y = 165;
  } else if x == 166 {
    y = 166;
  } else if x == 167 {
    y = 167;
  } else if x == 168 {
    y = 168;
  } else if x == 169 {
    y = 169;
  } else if x == 170 {
    y = 170;
  } else if x == 171 {
    y = 171;
  } else if x == 172 {
    y = 172;
  } else if x == 173 {
    y = 173;
  } else if x == 174 {
    y = 174;
  } else if x == 175 {
    y = 175;
  } else if x == 176 {
    y = 176;
  } else if x == 177 {
    y = 177;
  } else if x == 178 {
    y = 178;
  } else if x == 179 {
    y = 179;
  } else if x == 180 {
    y = 180;
  } else if x == 181 {
    y = 181;
  } else if x == 182 {
    y = 182;
  } else if x == 183 {
    y = 183;
  } else if x == 184 {
    y = 184;
  } else if x == 185 {
    y = 185;
  } else if x == 186 {
    y = 186;
  } else if x == 187 {
    y = 187;
  } else if x == 188 {
    y = 188;
  } else if x == 189 {
    y = 189;
  } else if x == 190 {
    y = 190;
  } else if x == 191 {
    y = 191;
  } else if x == 192 {
    y = 192;
  } else if x == 193 {
    y = 193;
  } else if x == 194 {
    y = 194;
  } else if x == 195 {
    y = 195;
  } else if x == 196 {
    y = 196;
  } else if x == 197 {
    y = 197;
  } else if x == 198 {
    y = 198;
  } else if x == 199 {
    y = 199;
  } else {
    y = -1;
  }
  return y;
}

public func Links(n: ref<Node>) -> ref<Node> {
  let a = n.Next().Next().Next().Next().Next().Next().Next().Next().Next().Next().Next().Next().Next().Next().Next().Next().Next().Next().Next().Next().Next().Next().Next().Next().Next().Next().Next().Next().Next().Next().Next().Next().Next().Next().Next().Next().Next().Next().Next().Next().Next().Next().Next().Next().Next().Next().Next().Next().Next().Next().Next().Next().Next().Next().Next().Next().Next().Next().Next().Next().Next().Next().Next().Next().Next().Next().Next().Next().Next().Next().Next().Next().Next().Next().Next().Next().Next().Next().Next().Next().Next().Next().Next().Next().Next().Next().Next().Next().Next().Next().Next().Next().Next().Next().Next().Next().Next().Next().Next().Next().Next().Next().Next().Next().Next().Next().Next().Next().Next().Next().Next().Next().Next().Next().Next().Next().Next().Next().Next().Next().Next().Next().Next().Next().Next().Next().Next().Next().Next().Next().Next().Next().Next().Next().Next().Next().Next().Next().Next().Next().Next().Next().Next().Next().Next().Next().Next().Next().Next().Next();
  return a.m_next.m_next.m_next.m_next.m_next.m_next.m_next.m_next.m_next.m_next.m_next.m_next.m_next.m_next.m_next.m_next.m_next.m_next.m_next.m_next.m_next.m_next.m_next.m_next.m_next.m_next.m_next.m_next.m_next.m_next.m_next.m_next.m_next.m_next.m_next.m_next.m_next.m_next.m_next.m_next.m_next.m_next.m_next.m_next.m_next.m_next.m_next.m_next.m_next.m_next.m_next.m_next.m_next.m_next.m_next.m_next.m_next.m_next.m_next.m_next.m_next.m_next.m_next.m_next.m_next.m_next.m_next.m_next.m_next.m_next.m_next.m_next.m_next.m_next.m_next.m_next.m_next.m_next.m_next.m_next.m_next.m_next.m_next.m_next.m_next.m_next.m_next.m_next.m_next.m_next.m_next.m_next.m_next.m_next.m_next.m_next.m_next.m_next.m_next.m_next.m_next.m_next.m_next.m_next.m_next.m_next.m_next.m_next.m_next.m_next.m_next.m_next.m_next.m_next.m_next.m_next.m_next.m_next.m_next.m_next.m_next.m_next.m_next.m_next.m_next.m_next.m_next.m_next.m_next.m_next.m_next.m_next.m_next.m_next.m_next.m_next.m_next.m_next.m_next.m_next.m_next.m_next.m_next.m_next.m_next.m_next.m_next.m_next.m_next.m_next;
}
