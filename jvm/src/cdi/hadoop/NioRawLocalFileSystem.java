package cdi.hadoop;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.attribute.PosixFileAttributeView;
import java.nio.file.attribute.PosixFilePermissions;

import org.apache.hadoop.fs.FileStatus;
import org.apache.hadoop.fs.Path;
import org.apache.hadoop.fs.RawLocalFileSystem;
import org.apache.hadoop.fs.permission.FsPermission;

/**
 * Hadoop's raw local file system, with permissions set and symbolic links found through Java NIO.
 *
 * <p>Without Hadoop's native library (pip's pyspark has none), {@link RawLocalFileSystem} starts a
 * {@code chmod} process for every file and directory it creates and a {@code readlink} process for
 * both sides of every rename: about 18 processes per Delta commit, some 450 in {@code cdi dedupe} of
 * 1,000 records. This class does the same two things in the JVM; everything else is Hadoop's.
 */
public class NioRawLocalFileSystem extends RawLocalFileSystem {

    /**
     * Sets the permission bits ({@code toShort}, what Hadoop hands {@code chmod}) as {@code chmod} would; a
     * sticky bit (never set on local files) is left to Hadoop. The bits are read through a plain
     * {@link FsPermission}: a subclass such as {@code FsCreateModes} prints itself otherwise.
     */
    @Override
    public void setPermission(Path path, FsPermission permission) throws IOException {
        java.nio.file.Path file = pathToFile(path).toPath();
        PosixFileAttributeView view = Files.getFileAttributeView(file, PosixFileAttributeView.class);
        FsPermission bits = new FsPermission(permission.toShort());
        if (view == null || bits.getStickyBit()) {
            super.setPermission(path, permission);
            return;
        }
        view.setPermissions(PosixFilePermissions.fromString(bits.toString()));
    }

    /**
     * The status of the path itself. A path that is no symbolic link (the only kind cdi writes) has the
     * status {@link #getFileStatus} gives, which is what Hadoop returns once {@code readlink} prints
     * nothing; a symbolic link is left to Hadoop.
     */
    @Override
    public FileStatus getFileLinkStatus(Path path) throws IOException {
        if (Files.isSymbolicLink(pathToFile(path).toPath())) {
            return super.getFileLinkStatus(path);
        }
        return getFileStatus(path);
    }

    @Override
    public String toString() {
        return "NioRawLocalFileSystem";
    }
}
