// A thin N-API binding over WiredTiger's C API: Connection, Session, Cursor.
//
// No storage logic lives here (that is src/devserver/storage/). This file only
// owns two concerns that JavaScript cannot handle itself:
//   * lifetimes: WT frees a session's cursors when the session closes and every
//     session when the connection closes. Each wrapper shares a small state
//     object with its parent, so a call on a dependent of a closed handle throws
//     instead of touching freed memory, and a finalizer never closes twice.
//   * memory: WT item memory is valid only until the next cursor call, so every
//     key/value is copied into a JS value before returning; keys/values passed in
//     are copied into the cursor, which keeps them alive for WT.
#include <napi.h>
#include <wiredtiger.h>

#include <cmath>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>

namespace {

// ---- errors ---------------------------------------------------------------

// WT reports the detail of an error ("WiredTiger.lock: handle-lock: ...") via the
// event handler, separately from the return code. On the JS thread we keep it to
// attach to the thrown Error; WT's own threads have no caller, so they print.
std::thread::id g_jsThread;
std::string g_detail;

int OnError(WT_EVENT_HANDLER*, WT_SESSION*, int, const char* message) {
  if (std::this_thread::get_id() != g_jsThread) {
    std::fprintf(stderr, "[wiredtiger] %s\n", message);
    return 0;
  }
  if (!g_detail.empty()) g_detail += "\n";
  g_detail += message;
  return 0;
}

WT_EVENT_HANDLER g_handler = {OnError, nullptr, nullptr, nullptr};

// Messages WT posted outside a failing call (one that succeeded, or a close run by
// a finalizer) are printed at the start of the next call rather than lost.
void FlushDetail() {
  if (g_detail.empty()) return;
  std::fprintf(stderr, "[wiredtiger] %s\n", g_detail.c_str());
  g_detail.clear();
}

[[noreturn]] void ThrowWt(Napi::Env env, int ret, const char* call) {
  Napi::Error err = Napi::Error::New(env, wiredtiger_strerror(ret));
  err.Set("wtCode", Napi::Number::New(env, ret));
  err.Set("wtCall", Napi::String::New(env, call));
  if (!g_detail.empty()) {
    err.Set("wtDetail", Napi::String::New(env, g_detail));
    g_detail.clear();
  }
  throw err;
}

void Check(Napi::Env env, int ret, const char* call) {
  if (ret != 0) ThrowWt(env, ret, call);
  FlushDetail();
}

// WT_NOTFOUND is an answer, not a failure: true when found.
bool CheckFound(Napi::Env env, int ret, const char* call) {
  if (ret == WT_NOTFOUND) return false;
  Check(env, ret, call);
  return true;
}

[[noreturn]] void ThrowClosed(Napi::Env env, const char* what) {
  Napi::Error err = Napi::Error::New(env, std::string(what) + " is closed");
  err.Set("code", Napi::String::New(env, "ERR_WT_CLOSED"));
  throw err;
}

// Optional string argument i, as a C config string (nullptr when absent).
std::string OptConfig(const Napi::CallbackInfo& info, size_t i) {
  if (info.Length() <= i || info[i].IsUndefined() || info[i].IsNull()) return "";
  if (!info[i].IsString()) throw Napi::TypeError::New(info.Env(), "config must be a string");
  return info[i].As<Napi::String>().Utf8Value();
}

std::string ReqString(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (info.Length() <= i || !info[i].IsString())
    throw Napi::TypeError::New(info.Env(), std::string(name) + " must be a string");
  return info[i].As<Napi::String>().Utf8Value();
}

const char* CStr(const std::string& s) { return s.empty() ? nullptr : s.c_str(); }

// ---- shared lifetime state --------------------------------------------------

struct ConnState {
  WT_CONNECTION* conn = nullptr;  // nullptr once closed
};

struct SessState {
  std::shared_ptr<ConnState> conn;
  WT_SESSION* session = nullptr;  // nullptr once closed
  bool Alive() const { return session != nullptr && conn->conn != nullptr; }
};

struct InstanceData {
  Napi::FunctionReference session;
  Napi::FunctionReference cursor;
};

// Constructors of Session and Cursor take this through an External; JS cannot.
struct SessInit { std::shared_ptr<SessState> state; };
struct CursorInit { std::shared_ptr<SessState> sess; WT_CURSOR* cursor; };

// ---- Connection -------------------------------------------------------------

class Connection : public Napi::ObjectWrap<Connection> {
 public:
  static Napi::Function Init(Napi::Env env) {
    return DefineClass(env, "Connection", {
      StaticMethod<&Connection::Open>("open"),
      InstanceMethod<&Connection::OpenSession>("openSession"),
      InstanceMethod<&Connection::Close>("close"),
      InstanceAccessor<&Connection::IsOpen>("isOpen"),
    });
  }

  explicit Connection(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Connection>(info) {
    if (info.Length() != 1 || !info[0].IsExternal())
      throw Napi::TypeError::New(info.Env(), "use Connection.open(home, config)");
    state_ = std::make_shared<ConnState>();
    state_->conn = info[0].As<Napi::External<WT_CONNECTION>>().Data();
  }

  ~Connection() override {
    // Finalizer of an unclosed connection: WT closes its sessions and cursors too.
    if (state_ && state_->conn != nullptr) {
      WT_CONNECTION* conn = state_->conn;
      state_->conn = nullptr;
      conn->close(conn, nullptr);
    }
  }

 private:
  static Napi::Value Open(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    std::string home = ReqString(info, 0, "home");
    std::string config = OptConfig(info, 1);
    WT_CONNECTION* conn = nullptr;
    FlushDetail();
    Check(env, wiredtiger_open(home.c_str(), &g_handler, CStr(config), &conn), "wiredtiger_open");
    Napi::Function ctor = info.This().As<Napi::Function>();
    return ctor.New({Napi::External<WT_CONNECTION>::New(env, conn)});
  }

  WT_CONNECTION* Live(Napi::Env env) {
    if (state_->conn == nullptr) ThrowClosed(env, "WT_CONNECTION");
    return state_->conn;
  }

  Napi::Value OpenSession(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    WT_CONNECTION* conn = Live(env);
    std::string config = OptConfig(info, 0);
    WT_SESSION* session = nullptr;
    FlushDetail();
    Check(env, conn->open_session(conn, nullptr, CStr(config), &session), "WT_CONNECTION.open_session");
    SessInit init{std::make_shared<SessState>()};
    init.state->conn = state_;
    init.state->session = session;
    // The session holds its connection wrapper, so a reachable session keeps it alive.
    return env.GetInstanceData<InstanceData>()->session.New(
        {Napi::External<SessInit>::New(env, &init), Value()});
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    WT_CONNECTION* conn = Live(env);
    std::string config = OptConfig(info, 0);
    state_->conn = nullptr;  // the handle is gone whatever close returns
    FlushDetail();
    Check(env, conn->close(conn, CStr(config)), "WT_CONNECTION.close");
    return env.Undefined();
  }

  Napi::Value IsOpen(const Napi::CallbackInfo& info) {
    return Napi::Boolean::New(info.Env(), state_->conn != nullptr);
  }

  std::shared_ptr<ConnState> state_;
};

// ---- Session ----------------------------------------------------------------

// Sessions and cursors are made only by their parent's factory method, which passes the
// native state and the parent object (kept reachable while the child lives).
void RequireFactoryArgs(const Napi::CallbackInfo& info, const char* usage) {
  if (info.Length() != 2 || !info[0].IsExternal() || !info[1].IsObject()) throw Napi::TypeError::New(info.Env(), usage);
}

class Session : public Napi::ObjectWrap<Session> {
 public:
  static Napi::Function Init(Napi::Env env) {
    return DefineClass(env, "Session", {
      InstanceMethod<&Session::Create>("create"),
      InstanceMethod<&Session::Drop>("drop"),
      InstanceMethod<&Session::Begin>("beginTransaction"),
      InstanceMethod<&Session::Commit>("commitTransaction"),
      InstanceMethod<&Session::Rollback>("rollbackTransaction"),
      InstanceMethod<&Session::Checkpoint>("checkpoint"),
      InstanceMethod<&Session::LogFlush>("logFlush"),
      InstanceMethod<&Session::OpenCursor>("openCursor"),
      InstanceMethod<&Session::Close>("close"),
      InstanceAccessor<&Session::IsOpen>("isOpen"),
    });
  }

  explicit Session(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Session>(info) {
    RequireFactoryArgs(info, "use Connection.openSession()");
    state_ = info[0].As<Napi::External<SessInit>>().Data()->state;
    parent_ = Napi::Persistent(info[1].As<Napi::Object>());
  }

  ~Session() override {
    if (state_ && state_->Alive()) state_->session->close(state_->session, nullptr);
    if (state_) state_->session = nullptr;
  }

 private:
  WT_SESSION* Live(Napi::Env env) {
    if (!state_->Alive()) ThrowClosed(env, "WT_SESSION");
    FlushDetail();
    return state_->session;
  }


  // Most WT_SESSION methods take a URI and a config string, or a config string alone:
  // one call path each, so every method checks liveness and errors the same way.
  using UriConfigMethod = int (*WT_SESSION::*)(WT_SESSION*, const char*, const char*);
  using ConfigMethod = int (*WT_SESSION::*)(WT_SESSION*, const char*);

  Napi::Value CallUriConfig(const Napi::CallbackInfo& info, UriConfigMethod method, const char* what) {
    WT_SESSION* s = Live(info.Env());
    std::string uri = ReqString(info, 0, "uri"), config = OptConfig(info, 1);
    Check(info.Env(), (s->*method)(s, uri.c_str(), CStr(config)), what);
    return info.Env().Undefined();
  }

  Napi::Value CallConfig(const Napi::CallbackInfo& info, ConfigMethod method, const char* what) {
    WT_SESSION* s = Live(info.Env());
    std::string config = OptConfig(info, 0);
    Check(info.Env(), (s->*method)(s, CStr(config)), what);
    return info.Env().Undefined();
  }

  Napi::Value Create(const Napi::CallbackInfo& info) { return CallUriConfig(info, &WT_SESSION::create, "WT_SESSION.create"); }
  Napi::Value Drop(const Napi::CallbackInfo& info) { return CallUriConfig(info, &WT_SESSION::drop, "WT_SESSION.drop"); }
  Napi::Value Begin(const Napi::CallbackInfo& info) {
    return CallConfig(info, &WT_SESSION::begin_transaction, "WT_SESSION.begin_transaction");
  }
  Napi::Value Commit(const Napi::CallbackInfo& info) {
    return CallConfig(info, &WT_SESSION::commit_transaction, "WT_SESSION.commit_transaction");
  }
  Napi::Value Rollback(const Napi::CallbackInfo& info) {
    WT_SESSION* s = Live(info.Env());
    Check(info.Env(), s->rollback_transaction(s, nullptr), "WT_SESSION.rollback_transaction");
    return info.Env().Undefined();
  }
  Napi::Value Checkpoint(const Napi::CallbackInfo& info) { return CallConfig(info, &WT_SESSION::checkpoint, "WT_SESSION.checkpoint"); }
  Napi::Value LogFlush(const Napi::CallbackInfo& info) { return CallConfig(info, &WT_SESSION::log_flush, "WT_SESSION.log_flush"); }

  Napi::Value OpenCursor(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    WT_SESSION* s = Live(env);
    std::string uri = ReqString(info, 0, "uri"), config = OptConfig(info, 1);
    WT_CURSOR* cursor = nullptr;
    Check(env, s->open_cursor(s, uri.c_str(), nullptr, CStr(config), &cursor), "WT_SESSION.open_cursor");
    CursorInit init{state_, cursor};
    return env.GetInstanceData<InstanceData>()->cursor.New(
        {Napi::External<CursorInit>::New(env, &init), Value()});
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    WT_SESSION* s = Live(info.Env());
    state_->session = nullptr;  // WT frees the session and its cursors whatever close returns
    Check(info.Env(), s->close(s, nullptr), "WT_SESSION.close");
    return info.Env().Undefined();
  }

  Napi::Value IsOpen(const Napi::CallbackInfo& info) {
    return Napi::Boolean::New(info.Env(), state_->Alive());
  }

  std::shared_ptr<SessState> state_;
  Napi::ObjectReference parent_;  // keeps the Connection wrapper reachable
};

// ---- Cursor -----------------------------------------------------------------

// The formats this binding converts; anything else is refused on use.
enum class Fmt { Int64, Bytes, String, None, Other };

Fmt ParseFmt(const char* f) {
  std::string s = f == nullptr ? "" : f;
  if (s == "q") return Fmt::Int64;
  if (s == "u") return Fmt::Bytes;
  if (s == "S") return Fmt::String;
  if (s.empty()) return Fmt::None;
  return Fmt::Other;
}

// One side (key or value) of a cursor: JS -> WT with owned storage, WT -> JS by copy.
struct Slot {
  Fmt fmt = Fmt::None;
  std::string format;
  int64_t i64 = 0;
  std::string bytes;  // owned copy WT may point at until the next cursor call
  WT_ITEM item{};

  void FromJs(Napi::Env env, const Napi::Value& v, const char* what) {
    switch (fmt) {
      case Fmt::Int64: {
        if (!v.IsNumber()) throw Napi::TypeError::New(env, std::string(what) + " must be a number");
        double d = v.As<Napi::Number>().DoubleValue();
        if (!std::isfinite(d) || std::trunc(d) != d || std::fabs(d) > 9007199254740991.0)
          throw Napi::RangeError::New(env, std::string(what) + " must be a safe integer");
        i64 = static_cast<int64_t>(d);
        return;
      }
      case Fmt::Bytes: {
        if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array)
          throw Napi::TypeError::New(env, std::string(what) + " must be a Buffer");
        auto arr = v.As<Napi::Uint8Array>();
        bytes.assign(reinterpret_cast<const char*>(arr.Data()), arr.ByteLength());
        item.data = bytes.data();
        item.size = bytes.size();
        return;
      }
      case Fmt::String:
        if (!v.IsString()) throw Napi::TypeError::New(env, std::string(what) + " must be a string");
        bytes = v.As<Napi::String>().Utf8Value();
        return;
      default:
        throw Napi::TypeError::New(env, std::string("unsupported ") + what + " format '" + format + "'");
    }
  }
};

class Cursor : public Napi::ObjectWrap<Cursor> {
 public:
  static Napi::Function Init(Napi::Env env) {
    return DefineClass(env, "Cursor", {
      InstanceMethod<&Cursor::Search>("search"),
      InstanceMethod<&Cursor::SearchNear>("searchNear"),
      InstanceMethod<&Cursor::Insert>("insert"),
      InstanceMethod<&Cursor::Update>("update"),
      InstanceMethod<&Cursor::Remove>("remove"),
      InstanceMethod<&Cursor::Next>("next"),
      InstanceMethod<&Cursor::Prev>("prev"),
      InstanceMethod<&Cursor::GetKey>("getKey"),
      InstanceMethod<&Cursor::GetValue>("getValue"),
      InstanceMethod<&Cursor::NextBatch>("nextBatch"),
      InstanceMethod<&Cursor::Reset>("reset"),
      InstanceMethod<&Cursor::Close>("close"),
      InstanceMethod<&Cursor::Duplicate>("duplicate"),
      InstanceAccessor<&Cursor::Uri>("uri"),
      InstanceAccessor<&Cursor::KeyFormat>("keyFormat"),
      InstanceAccessor<&Cursor::ValueFormat>("valueFormat"),
      InstanceAccessor<&Cursor::IsOpen>("isOpen"),
    });
  }

  explicit Cursor(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Cursor>(info) {
    RequireFactoryArgs(info, "use Session.openCursor()");
    CursorInit* init = info[0].As<Napi::External<CursorInit>>().Data();
    sess_ = init->sess;
    cursor_ = init->cursor;
    parent_ = Napi::Persistent(info[1].As<Napi::Object>());
    uri_ = cursor_->uri == nullptr ? "" : cursor_->uri;
    key_.format = cursor_->key_format == nullptr ? "" : cursor_->key_format;
    value_.format = cursor_->value_format == nullptr ? "" : cursor_->value_format;
    key_.fmt = ParseFmt(cursor_->key_format);
    value_.fmt = ParseFmt(cursor_->value_format);
  }

  ~Cursor() override {
    if (cursor_ != nullptr && sess_->Alive()) cursor_->close(cursor_);
    cursor_ = nullptr;
  }

 private:
  WT_CURSOR* Live(Napi::Env env) {
    if (cursor_ == nullptr || !sess_->Alive()) ThrowClosed(env, "WT_CURSOR");
    FlushDetail();
    return cursor_;
  }

  void SetKey(Napi::Env env, const Napi::Value& v) {
    key_.FromJs(env, v, "key");
    switch (key_.fmt) {
      case Fmt::Int64: cursor_->set_key(cursor_, key_.i64); break;
      case Fmt::Bytes: cursor_->set_key(cursor_, &key_.item); break;
      default: cursor_->set_key(cursor_, key_.bytes.c_str()); break;
    }
  }

  void SetValue(Napi::Env env, const Napi::Value& v) {
    value_.FromJs(env, v, "value");
    switch (value_.fmt) {
      case Fmt::Int64: cursor_->set_value(cursor_, value_.i64); break;
      case Fmt::Bytes: cursor_->set_value(cursor_, &value_.item); break;
      default: cursor_->set_value(cursor_, value_.bytes.c_str()); break;
    }
  }

  // Copies the current key (or value) out of WT memory.
  Napi::Value Read(Napi::Env env, const Slot& slot, bool isKey) {
    int ret = 0;
    switch (slot.fmt) {
      case Fmt::Int64: {
        int64_t v = 0;
        ret = isKey ? cursor_->get_key(cursor_, &v) : cursor_->get_value(cursor_, &v);
        Check(env, ret, isKey ? "WT_CURSOR.get_key" : "WT_CURSOR.get_value");
        return Napi::Number::New(env, static_cast<double>(v));
      }
      case Fmt::Bytes: {
        WT_ITEM item{};
        ret = isKey ? cursor_->get_key(cursor_, &item) : cursor_->get_value(cursor_, &item);
        Check(env, ret, isKey ? "WT_CURSOR.get_key" : "WT_CURSOR.get_value");
        return Napi::Buffer<uint8_t>::Copy(env, static_cast<const uint8_t*>(item.data), item.size);
      }
      case Fmt::String: {
        const char* s = nullptr;
        ret = isKey ? cursor_->get_key(cursor_, &s) : cursor_->get_value(cursor_, &s);
        Check(env, ret, isKey ? "WT_CURSOR.get_key" : "WT_CURSOR.get_value");
        return Napi::String::New(env, s == nullptr ? "" : s);
      }
      case Fmt::None:
        return env.Null();
      default:
        throw Napi::TypeError::New(env, "unsupported format '" + slot.format + "'");
    }
  }

  Napi::Value Search(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    WT_CURSOR* c = Live(env);
    SetKey(env, info[0]);
    if (!CheckFound(env, c->search(c), "WT_CURSOR.search")) return env.Null();
    return Read(env, value_, false);
  }

  Napi::Value SearchNear(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    WT_CURSOR* c = Live(env);
    SetKey(env, info[0]);
    int exact = 0;
    if (!CheckFound(env, c->search_near(c, &exact), "WT_CURSOR.search_near")) return env.Null();
    Napi::Object out = Napi::Object::New(env);
    out.Set("exact", Napi::Number::New(env, exact));
    return out;
  }

  Napi::Value Insert(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    WT_CURSOR* c = Live(env);
    SetKey(env, info[0]);
    SetValue(env, info[1]);
    Check(env, c->insert(c), "WT_CURSOR.insert");
    return env.Undefined();
  }

  // false when the record does not exist (only reported with overwrite=false).
  Napi::Value Update(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    WT_CURSOR* c = Live(env);
    SetKey(env, info[0]);
    SetValue(env, info[1]);
    return Napi::Boolean::New(env, CheckFound(env, c->update(c), "WT_CURSOR.update"));
  }

  Napi::Value Remove(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    WT_CURSOR* c = Live(env);
    SetKey(env, info[0]);
    return Napi::Boolean::New(env, CheckFound(env, c->remove(c), "WT_CURSOR.remove"));
  }

  Napi::Value Next(const Napi::CallbackInfo& info) {
    WT_CURSOR* c = Live(info.Env());
    return Napi::Boolean::New(info.Env(), CheckFound(info.Env(), c->next(c), "WT_CURSOR.next"));
  }

  Napi::Value Prev(const Napi::CallbackInfo& info) {
    WT_CURSOR* c = Live(info.Env());
    return Napi::Boolean::New(info.Env(), CheckFound(info.Env(), c->prev(c), "WT_CURSOR.prev"));
  }

  Napi::Value GetKey(const Napi::CallbackInfo& info) {
    Live(info.Env());
    return Read(info.Env(), key_, true);
  }

  Napi::Value GetValue(const Napi::CallbackInfo& info) {
    Live(info.Env());
    return Read(info.Env(), value_, false);
  }

  // Up to n [key, value] pairs from next(); fewer means the end was reached.
  Napi::Value NextBatch(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    WT_CURSOR* c = Live(env);
    if (info.Length() < 1 || !info[0].IsNumber()) throw Napi::TypeError::New(env, "n must be a number");
    int64_t n = info[0].As<Napi::Number>().Int64Value();
    Napi::Array out = Napi::Array::New(env);
    for (uint32_t i = 0; i < n; i++) {
      if (!CheckFound(env, c->next(c), "WT_CURSOR.next")) break;
      Napi::Array pair = Napi::Array::New(env, 2);
      pair.Set(0u, Read(env, key_, true));
      pair.Set(1u, Read(env, value_, false));
      out.Set(i, pair);
    }
    return out;
  }

  Napi::Value Reset(const Napi::CallbackInfo& info) {
    WT_CURSOR* c = Live(info.Env());
    Check(info.Env(), c->reset(c), "WT_CURSOR.reset");
    return info.Env().Undefined();
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    WT_CURSOR* c = Live(info.Env());
    cursor_ = nullptr;  // freed whatever close returns
    Check(info.Env(), c->close(c), "WT_CURSOR.close");
    return info.Env().Undefined();
  }

  // WT_SESSION::open_cursor(session, NULL, this, config): a duplicate of this cursor on the
  // same session, as mongod's extendBackupCursor opens `target=("log:")` on its backup
  // cursor (src/mongo/db/storage/wiredtiger/wiredtiger_kv_engine.cpp). The duplicate keeps
  // this cursor's wrapper reachable; close it before this one.
  Napi::Value Duplicate(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    WT_CURSOR* c = Live(env);
    std::string config = OptConfig(info, 0);
    WT_SESSION* s = sess_->session;
    WT_CURSOR* dup = nullptr;
    Check(env, s->open_cursor(s, nullptr, c, CStr(config), &dup), "WT_SESSION.open_cursor(duplicate)");
    CursorInit init{sess_, dup};
    return env.GetInstanceData<InstanceData>()->cursor.New({Napi::External<CursorInit>::New(env, &init), Value()});
  }

  Napi::Value Uri(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), uri_); }
  Napi::Value KeyFormat(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), key_.format); }
  Napi::Value ValueFormat(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), value_.format); }
  Napi::Value IsOpen(const Napi::CallbackInfo& info) {
    return Napi::Boolean::New(info.Env(), cursor_ != nullptr && sess_->Alive());
  }

  std::shared_ptr<SessState> sess_;
  WT_CURSOR* cursor_ = nullptr;  // nullptr once closed by us
  Napi::ObjectReference parent_;  // keeps the Session wrapper reachable
  std::string uri_;
  Slot key_, value_;
};

// ---- module -----------------------------------------------------------------

Napi::Object InitModule(Napi::Env env, Napi::Object exports) {
  g_jsThread = std::this_thread::get_id();
  auto* data = new InstanceData();
  data->session = Napi::Persistent(Session::Init(env));
  data->cursor = Napi::Persistent(Cursor::Init(env));
  env.SetInstanceData(data);

  exports.Set("Connection", Connection::Init(env));
  exports.Set("Session", data->session.Value());
  exports.Set("Cursor", data->cursor.Value());
  int major = 0, minor = 0, patch = 0;
  exports.Set("version", Napi::String::New(env, wiredtiger_version(&major, &minor, &patch)));
  Napi::Object codes = Napi::Object::New(env);
  codes.Set("WT_ROLLBACK", WT_ROLLBACK);
  codes.Set("WT_DUPLICATE_KEY", WT_DUPLICATE_KEY);
  codes.Set("WT_ERROR", WT_ERROR);
  codes.Set("WT_NOTFOUND", WT_NOTFOUND);
  codes.Set("WT_PANIC", WT_PANIC);
  codes.Set("WT_RUN_RECOVERY", WT_RUN_RECOVERY);
  codes.Set("WT_CACHE_FULL", WT_CACHE_FULL);
  codes.Set("WT_PREPARE_CONFLICT", WT_PREPARE_CONFLICT);
  codes.Set("WT_TRY_SALVAGE", WT_TRY_SALVAGE);
  codes.Set("EBUSY", EBUSY);
  codes.Set("ENOENT", ENOENT);
  codes.Set("EINVAL", EINVAL);
  exports.Set("codes", codes);
  return exports;
}

}  // namespace

NODE_API_MODULE(wiredtiger, InitModule)
