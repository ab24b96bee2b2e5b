// The call recording settings page: show only the storage fields the chosen kind uses
// (inputs marked data-storage="s3 azure"); hidden fields keep their values and are posted.
document.addEventListener("DOMContentLoaded", () => {
  const form = document.querySelector("form[data-storage-form]");
  if (!form) return;
  const choice = form.querySelector("select[name=storage]");
  if (!choice) return;
  const update = () => {
    form.querySelectorAll("[data-storage]").forEach((input) => {
      const kinds = input.dataset.storage.split(" ");
      const wrapper = input.closest(".field");
      if (wrapper) wrapper.hidden = !kinds.includes(choice.value);
    });
  };
  choice.addEventListener("change", update);
  update();
});
