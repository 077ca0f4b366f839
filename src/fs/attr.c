/*
 * attr.c - changing a file's mode and owner (pcache_fchmod, pcache_fchown),
 * after the kernel's fs/attr.c.
 *
 *	notify_change()			i_rwsem held across:
 *	  s_op->setattr()		  the backend applies @attr to its storage
 *	    setattr_copy()		  and then to the inode, or, with no hook,
 *	  simple_setattr()		  the inode is the only copy:
 *	    setattr_prepare()		    the permission check, then
 *	    setattr_copy()
 *
 * Locking: i_mode, i_uid, i_gid and i_owner_set change only under both
 * i_rwsem and i_lock (setattr_copy, called with i_rwsem held), so a reader
 * may hold either: notify_change's callee reads them under i_rwsem,
 * generic_fillattr under i_lock.  i_lock is a leaf; nothing here takes the
 * ns_lock.
 *
 * Owners: an inode whose owner was never set (i_owner_set false) belongs
 * to the calling process (getuid/getgid), as pcache_fstat has always
 * shown; the first chown makes the owner the inode's own.  Permission, for
 * backends without storage, is the kernel's rule with "capable" read as
 * "effective uid 0": the owner or root may chmod; only root may give a
 * file to another user; the owner may change the group to one of its own
 * groups.  A chmod by someone outside the file's group drops S_ISGID, and
 * a chown drops S_ISUID (and S_ISGID with S_IXGRP), as on Linux.
 */
#include <errno.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "fs.h"

/* Caller holds i_rwsem or i_lock. */
static uid_t inode_uid(const struct inode *inode)
{
	return inode->i_owner_set ? inode->i_uid : getuid();
}

static gid_t inode_gid(const struct inode *inode)
{
	return inode->i_owner_set ? inode->i_gid : getgid();
}

static bool capable(void)
{
	return geteuid() == 0;
}

/* Is @gid the caller's effective group or one of its supplementary ones? */
static bool in_group_p(gid_t gid)
{
	gid_t groups[64], *list = groups;
	int n, i;
	bool found = false;

	if (gid == getegid())
		return true;
	n = getgroups(0, NULL);
	if (n <= 0)
		return false;
	if (n > (int)ARRAY_SIZE(groups)) {
		list = malloc((size_t)n * sizeof(*list));
		if (!list)
			return false;
	}
	n = getgroups(n, list);
	for (i = 0; i < n && !found; i++)
		found = list[i] == gid;
	if (list != groups)
		free(list);
	return found;
}

int setattr_prepare(struct inode *inode, const struct iattr *attr)
{
	uid_t owner = inode_uid(inode);
	bool is_owner = geteuid() == owner;

	if (capable())
		return 0;
	if ((attr->ia_valid & ATTR_UID) &&
	    !(is_owner && attr->ia_uid == owner))
		return -EPERM;
	if ((attr->ia_valid & ATTR_GID) &&
	    !(is_owner && (attr->ia_gid == inode_gid(inode) ||
			   in_group_p(attr->ia_gid))))
		return -EPERM;
	if ((attr->ia_valid & ATTR_MODE) && !is_owner)
		return -EPERM;
	return 0;
}

void setattr_copy(struct inode *inode, const struct iattr *attr)
{
	unsigned int valid = attr->ia_valid;
	struct timespec now;

	clock_gettime(CLOCK_REALTIME, &now);
	pthread_mutex_lock(&inode->i_lock);
	if ((valid & (ATTR_UID | ATTR_GID)) && !inode->i_owner_set) {
		inode->i_uid = getuid();
		inode->i_gid = getgid();
		inode->i_owner_set = true;
	}
	if (valid & ATTR_UID)
		inode->i_uid = attr->ia_uid;
	if (valid & ATTR_GID)
		inode->i_gid = attr->ia_gid;
	if (valid & ATTR_MODE)
		inode->i_mode = (inode->i_mode & S_IFMT) | (attr->ia_mode & 07777);
	if (valid & ATTR_KILL_SUID)
		inode->i_mode &= ~(mode_t)S_ISUID;
	if ((valid & ATTR_KILL_SGID) && (inode->i_mode & S_IXGRP))
		inode->i_mode &= ~(mode_t)S_ISGID;
	inode->i_ctime = now;
	pthread_mutex_unlock(&inode->i_lock);
}

int simple_setattr(struct inode *inode, const struct iattr *attr)
{
	struct iattr a = *attr;
	int err = setattr_prepare(inode, attr);

	if (err)
		return err;
	if ((a.ia_valid & ATTR_MODE) && !capable() &&
	    !in_group_p(a.ia_valid & ATTR_GID ? a.ia_gid : inode_gid(inode)))
		a.ia_mode &= ~(mode_t)S_ISGID;
	setattr_copy(inode, &a);
	return 0;
}

int notify_change(struct inode *inode, const struct iattr *attr)
{
	const struct super_operations *s_op = inode->i_sb->s_op;
	int err;

	inode_lock(inode);
	if (s_op->setattr)
		err = s_op->setattr(inode, attr);
	else
		err = simple_setattr(inode, attr);
	inode_unlock(inode);
	return err;
}
