"""fairseq's epoch iterators with DataLoader workers that end with their pass over the data.

Our datasets cannot reuse an epoch iterator (``can_reuse_epoch_itr_across_epochs`` is False:
frame sampling and augmentation depend on the epoch, which persistent workers, forked once, would
never see), so fairseq builds a new iterator, and a new DataLoader, for every epoch and every
validation. fairseq makes their workers persistent by default; a finished iterator's workers then
live until the garbage collector breaks its reference cycles, each holding a copy-on-write image of
the trainer (a 2-core joint run with ``--num-workers 1`` ran out of memory this way). Non-persistent
workers are shut down as soon as their DataLoader iterator is let go of, which fairseq's data
buffer (``--data-buffer-size``) does when the pass ends.
"""


def without_persistent_workers(epoch_iter):
    """``epoch_iter`` (a fairseq ``EpochBatchIterator``), set to build its DataLoader with
    non-persistent workers; the attribute is read when it builds one."""
    epoch_iter.persistent_workers = False
    return epoch_iter
