/** A user's module: it needs only the exported package of taskgroup. */
module com.example.consumer {
  requires dev.taskgroup;
}
