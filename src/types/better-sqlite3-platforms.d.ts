// The per-platform entry points of better-sqlite3 13 export the same class as the package root.
declare module 'better-sqlite3/linux-x64' {
  import Database from 'better-sqlite3'
  export default Database
}
declare module 'better-sqlite3/linux-arm64' {
  import Database from 'better-sqlite3'
  export default Database
}
declare module 'better-sqlite3/darwin-arm64' {
  import Database from 'better-sqlite3'
  export default Database
}
declare module 'better-sqlite3/darwin-x64' {
  import Database from 'better-sqlite3'
  export default Database
}
declare module 'better-sqlite3/win32-x64' {
  import Database from 'better-sqlite3'
  export default Database
}
declare module 'better-sqlite3/win32-arm64' {
  import Database from 'better-sqlite3'
  export default Database
}
